"""Settings: parsed once from the environment, with the retry arithmetic both functions share."""

from __future__ import annotations

import pytest

from keyrotation.settings import DAY, MAX_VISIBILITY, Settings, SettingsError


def test_settings_from_env_parses_every_variable() -> None:
    # GIVEN an environment that sets every knob
    environ = {
        "TAG_KEY": "momento-key",
        "ROTATION_QUEUE_URL": "https://sqs.example/rotation.fifo",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.example/dlq.fifo",
        "REFRESH_WINDOW_SECONDS": "172800",
        "SCAN_INTERVAL_SECONDS": "1800",
        "MAX_RECEIVE_COUNT": "8",
        "VISIBILITY_TIMEOUT_SECONDS": "900",
        "BACKOFF_BASE_SECONDS": "60",
        "MOMENTO_ENDPOINT_OVERRIDE": "127.0.0.1:50051",
        "MOMENTO_TIMEOUT_SECONDS": "2.5",
        "MIN_TIME_FOR_ROTATION_SECONDS": "20",
        "WRITE_RETRY_ATTEMPTS": "3",
    }

    # WHEN settings are read from it
    settings = Settings.from_env(environ)

    # THEN each value lands in its field, typed
    assert settings == Settings(
        tag_key="momento-key",
        rotation_queue_url="https://sqs.example/rotation.fifo",
        dead_letter_queue_url="https://sqs.example/dlq.fifo",
        refresh_window_seconds=172800,
        scan_interval_seconds=1800,
        max_receive_count=8,
        visibility_timeout_seconds=900,
        backoff_base_seconds=60,
        momento_endpoint_override="127.0.0.1:50051",
        momento_timeout_seconds=2.5,
        min_time_for_rotation_seconds=20.0,
        write_retry_attempts=3,
    )


def test_settings_from_env_uses_defaults_for_absent_and_blank_values() -> None:
    # GIVEN variables that are unset or blank
    environ = {"TAG_KEY": "  ", "ROTATION_QUEUE_URL": "", "REFRESH_WINDOW_SECONDS": " "}

    # WHEN settings are read
    # THEN they are the defaults
    assert Settings.from_env(environ) == Settings()


def test_settings_from_env_reads_the_process_environment_by_default(monkeypatch) -> None:
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "9")
    assert Settings.from_env().max_receive_count == 9


INTEGER_VARIABLES = [
    "REFRESH_WINDOW_SECONDS",
    "SCAN_INTERVAL_SECONDS",
    "MAX_RECEIVE_COUNT",
    "VISIBILITY_TIMEOUT_SECONDS",
    "BACKOFF_BASE_SECONDS",
    "WRITE_RETRY_ATTEMPTS",
]
NUMBER_VARIABLES = ["MOMENTO_TIMEOUT_SECONDS", "MIN_TIME_FOR_ROTATION_SECONDS"]


@pytest.mark.parametrize("name", INTEGER_VARIABLES + NUMBER_VARIABLES)
@pytest.mark.parametrize("raw", ["-1", "ten", "nan"], ids=["negative", "word", "nan"])
def test_settings_from_env_refuses_unusable_numbers_naming_the_variable(
    name: str, raw: str
) -> None:
    # GIVEN a numeric variable set to a value no timeout or count can take
    # WHEN settings are read
    # THEN the error names the variable
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: raw})


def test_backoff_seconds_doubles_from_the_base_and_is_capped_at_twelve_hours() -> None:
    # GIVEN a five-minute base
    settings = Settings(backoff_base_seconds=300)

    # WHEN the delay after each failed delivery is computed
    delays = [settings.backoff_seconds(attempt) for attempt in (0, 1, 2, 3, 4, 20)]

    # THEN it doubles per attempt, never exceeding SQS's 12-hour visibility limit
    assert delays == [300, 300, 600, 1200, 2400, MAX_VISIBILITY]
    assert MAX_VISIBILITY == 12 * 3600


@pytest.mark.parametrize(
    ("from_attempt", "expected"),
    [(1, 300 + 600 + 1200 + 2400), (0, 4500), (3, 1200 + 2400), (5, 0), (9, 0)],
    ids=["first", "before-first", "third", "last", "past-last"],
)
def test_retry_budget_seconds_sums_the_backoffs_still_ahead(
    from_attempt: int, expected: int
) -> None:
    # GIVEN five deliveries before the message is dead-lettered
    settings = Settings(max_receive_count=5, backoff_base_seconds=300)

    # WHEN the time the remaining retries take is computed
    # THEN it is the sum of the backoffs between the remaining deliveries
    assert settings.retry_budget_seconds(from_attempt) == expected


@pytest.mark.parametrize(
    ("scan_interval", "base", "expected"),
    [(3600, 300, DAY), (DAY, 300, 3 * DAY + 4500), (3600, 3600, 3 * 3600 + 54_000)],
    ids=["hourly-scan-a-day", "daily-scan", "long-backoffs"],
)
def test_minimum_refresh_window_covers_scans_and_retries(
    scan_interval: int, base: int, expected: int
) -> None:
    settings = Settings(scan_interval_seconds=scan_interval, backoff_base_seconds=base)
    assert settings.minimum_refresh_window_seconds == max(DAY, expected)


def test_with_overrides_changes_only_the_named_fields() -> None:
    settings = Settings(tag_key="a").with_overrides(max_receive_count=2)
    assert (settings.tag_key, settings.max_receive_count) == ("a", 2)


@pytest.mark.parametrize("window", ["0", "3600"], ids=["zero", "one-hour"])
def test_settings_from_env_refuses_a_refresh_window_shorter_than_the_retries(window: str) -> None:
    # GIVEN a refresh window that would open after the retries could no longer finish
    # WHEN the settings are read
    # THEN they are refused, naming the variable and the floor
    with pytest.raises(SettingsError, match=r"REFRESH_WINDOW_SECONDS=.*at least 86400"):
        Settings.from_env({"REFRESH_WINDOW_SECONDS": window})
