"""When a key is due: the refresh window and how urgent each key is.

The window is the time before `validUntil` at which a refresh starts. Every hour of it is
retry budget, because an expired key can no longer be refreshed. By default it is a third of
the key's lifetime, never less than `Settings.minimum_refresh_window_seconds` (a day, or a few
scans plus the whole retry budget if that is longer), and never more than half the lifetime
(so a freshly refreshed key is not due again at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keyrotation.settings import DAY, Settings

# NOTE: used until a first rotation has measured the lifetime (JWT claims usually give it).
UNKNOWN_LIFETIME_WINDOW = 7 * DAY


class Urgency(StrEnum):
    NEVER_EXPIRES = "never-expires"
    OK = "ok"
    DUE = "due"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Assessment:
    urgency: Urgency
    seconds_left: int | None
    window_seconds: int
    overdue: bool = False

    @property
    def needs_refresh(self) -> bool:
        return self.urgency in (Urgency.DUE, Urgency.EXPIRED)


def refresh_window(settings: Settings, lifetime_seconds: int | None) -> int:
    """Seconds before expiry at which a key of this lifetime becomes due."""
    if settings.refresh_window_seconds is not None:
        return settings.refresh_window_seconds
    if not lifetime_seconds:
        return max(UNKNOWN_LIFETIME_WINDOW, settings.minimum_refresh_window_seconds)
    window = max(lifetime_seconds // 3, settings.minimum_refresh_window_seconds)
    return min(window, lifetime_seconds // 2)


def assess(
    valid_until: int, lifetime_seconds: int | None, settings: Settings, now: float
) -> Assessment:
    """How urgent a key expiring at `valid_until` (epoch seconds, 0 = never) is at `now`.

    A due key is also `overdue` once less than `Settings.minimum_refresh_window_seconds` is
    left: the rotator has had its chance, and its retries may no longer finish in time.
    """
    window = refresh_window(settings, lifetime_seconds)
    if valid_until == 0:
        return Assessment(Urgency.NEVER_EXPIRES, None, window)
    seconds_left = int(valid_until - now)
    if seconds_left <= 0:
        return Assessment(Urgency.EXPIRED, seconds_left, window)
    if seconds_left <= window:
        overdue = seconds_left < settings.minimum_refresh_window_seconds
        return Assessment(Urgency.DUE, seconds_left, window, overdue)
    return Assessment(Urgency.OK, seconds_left, window)
