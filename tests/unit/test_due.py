"""When a key is due: the refresh window, and how urgent a key is at a given moment."""

from __future__ import annotations

import pytest

from keyrotation import due
from keyrotation.due import Urgency
from keyrotation.settings import DAY, Settings

NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [
        (30 * DAY, 10 * DAY),
        (6 * DAY, 2 * DAY),
        (int(2.4 * DAY), DAY),
        (int(1.5 * DAY), int(0.75 * DAY)),
    ],
    ids=["a-third-of-30-days", "a-third-of-6-days", "floored-at-a-day", "capped-at-half"],
)
def test_refresh_window_is_a_third_of_the_lifetime_between_floor_and_half(
    lifetime: int, expected: int
) -> None:
    # GIVEN default settings (hourly scans: the floor is a day)
    settings = Settings()
    assert settings.minimum_refresh_window_seconds == DAY

    # WHEN the window for a key of this lifetime is computed
    # THEN it is lifetime/3, at least the floor, at most lifetime/2
    assert due.refresh_window(settings, lifetime) == expected


def test_refresh_window_floor_follows_the_scan_interval_and_retry_budget() -> None:
    # GIVEN daily scans, so the floor is three scans plus the whole retry budget
    settings = Settings(scan_interval_seconds=DAY)
    floor = settings.minimum_refresh_window_seconds
    assert floor == 3 * DAY + settings.retry_budget_seconds()

    # WHEN the window of a 9-day key is computed (a third would be 3 days: below the floor)
    # THEN the floor applies
    assert due.refresh_window(settings, 9 * DAY) == floor


@pytest.mark.parametrize("lifetime", [None, 0, 30 * DAY], ids=["unknown", "zero", "known"])
def test_refresh_window_explicit_setting_wins(lifetime: int | None) -> None:
    settings = Settings(refresh_window_seconds=3 * 3600)
    assert due.refresh_window(settings, lifetime) == 3 * 3600


@pytest.mark.parametrize("lifetime", [None, 0], ids=["unknown", "zero"])
def test_refresh_window_of_an_unknown_lifetime_is_the_documented_default(
    lifetime: int | None,
) -> None:
    # GIVEN a key whose lifetime is not known
    # WHEN its window is computed
    # THEN it is the documented default of seven days
    assert due.refresh_window(Settings(), lifetime) == due.UNKNOWN_LIFETIME_WINDOW == 7 * DAY


def test_refresh_window_of_an_unknown_lifetime_never_drops_below_the_floor() -> None:
    settings = Settings(scan_interval_seconds=3 * DAY)
    assert due.refresh_window(settings, None) == settings.minimum_refresh_window_seconds


WINDOW = 10 * DAY  # of a 30-day key under default settings


@pytest.mark.parametrize(
    ("valid_until", "urgency", "seconds_left"),
    [
        (0, Urgency.NEVER_EXPIRES, None),
        (NOW + WINDOW + 1, Urgency.OK, WINDOW + 1),
        (NOW + WINDOW, Urgency.DUE, WINDOW),
        (NOW + 1, Urgency.DUE, 1),
        (NOW, Urgency.EXPIRED, 0),
        (NOW - DAY, Urgency.EXPIRED, -DAY),
    ],
    ids=[
        "never-expires",
        "one-second-before-the-window",
        "at-the-window",
        "one-second-left",
        "expiring-now",
        "expired-a-day-ago",
    ],
)
def test_assess_classifies_the_boundaries(
    valid_until: int, urgency: Urgency, seconds_left: int | None
) -> None:
    # GIVEN a 30-day key expiring at valid_until
    # WHEN it is assessed at NOW
    assessment = due.assess(valid_until, 30 * DAY, Settings(), NOW)

    # THEN the urgency and the seconds left are as expected
    assert (assessment.urgency, assessment.seconds_left) == (urgency, seconds_left)
    assert assessment.window_seconds == WINDOW
    assert assessment.needs_refresh is (urgency in (Urgency.DUE, Urgency.EXPIRED))
