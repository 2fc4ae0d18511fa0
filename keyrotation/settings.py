"""Settings for both functions, parsed once at the edge.

Rule: an explicit argument beats the environment, which beats the default. Domain code receives a
`Settings` object and never reads `os.environ` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

DEFAULT_TAG_KEY = "momento-token"
DAY = 86_400
MAX_VISIBILITY = 43_200


class SettingsError(ValueError):
    """Raised when an environment variable holds a value the functions cannot work with."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the scanner and the rotator.

    Times are in seconds. `refresh_window_seconds` of None means "derive it from the key's
    lifetime" (see `keyrotation.due`).
    """

    tag_key: str = DEFAULT_TAG_KEY
    rotation_queue_url: str | None = None  # the scanner sends here; the rotator backs off here
    dead_letter_queue_url: str | None = None
    refresh_window_seconds: int | None = None
    scan_interval_seconds: int = 3_600
    max_receive_count: int = 5
    visibility_timeout_seconds: int = 360
    backoff_base_seconds: int = 300
    momento_endpoint_override: str | None = None
    momento_timeout_seconds: float = 10.0
    min_time_for_rotation_seconds: float = 15.0
    write_retry_attempts: int = 5

    def backoff_seconds(self, attempt: int) -> int:
        """How long a message waits after its `attempt`-th failed delivery (SQS caps at 12 h)."""
        return int(min(self.backoff_base_seconds * 2 ** max(0, attempt - 1), MAX_VISIBILITY))

    def retry_budget_seconds(self, from_attempt: int = 1) -> int:
        """How long the retries from delivery `from_attempt` on can take before dead-lettering."""
        attempts = range(max(1, from_attempt), self.max_receive_count)
        return sum(self.backoff_seconds(attempt) for attempt in attempts)

    @property
    def minimum_refresh_window_seconds(self) -> int:
        """The window below which a key could expire before the retries run out."""
        return max(DAY, 3 * self.scan_interval_seconds + self.retry_budget_seconds())

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        settings = cls(
            tag_key=_text(env, "TAG_KEY", defaults.tag_key),
            rotation_queue_url=env.get("ROTATION_QUEUE_URL") or None,
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL") or None,
            refresh_window_seconds=_optional_int(env, "REFRESH_WINDOW_SECONDS"),
            scan_interval_seconds=_int(
                env, "SCAN_INTERVAL_SECONDS", defaults.scan_interval_seconds
            ),
            max_receive_count=_int(env, "MAX_RECEIVE_COUNT", defaults.max_receive_count),
            visibility_timeout_seconds=_int(
                env, "VISIBILITY_TIMEOUT_SECONDS", defaults.visibility_timeout_seconds
            ),
            backoff_base_seconds=_int(env, "BACKOFF_BASE_SECONDS", defaults.backoff_base_seconds),
            momento_endpoint_override=env.get("MOMENTO_ENDPOINT_OVERRIDE") or None,
            momento_timeout_seconds=_float(
                env, "MOMENTO_TIMEOUT_SECONDS", defaults.momento_timeout_seconds
            ),
            min_time_for_rotation_seconds=_float(
                env, "MIN_TIME_FOR_ROTATION_SECONDS", defaults.min_time_for_rotation_seconds
            ),
            write_retry_attempts=_int(env, "WRITE_RETRY_ATTEMPTS", defaults.write_retry_attempts),
        )
        window, floor = settings.refresh_window_seconds, settings.minimum_refresh_window_seconds
        if window is not None and window < floor:
            raise SettingsError(
                f"REFRESH_WINDOW_SECONDS={window} leaves too little time to retry before a key "
                f"expires; it must be at least {floor} (a day, or three scans plus the retries)"
            )
        return settings


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _optional_int(env, name)
    return default if value is None else value


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name} must be a whole number of seconds or a count, got {raw!r}"
        ) from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value < 0:  # NaN or negative: no timeout or margin can be either
        raise SettingsError(f"{name} must be a non-negative number, got {raw!r}")
    return value
