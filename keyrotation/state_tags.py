"""The small state the rotator keeps on each secret as tags, so the scanner never reads values.

    momento-rotation:expiry        version=<id> valid_until=<epoch s> lifetime=<s> format=<fmt>
    momento-rotation:last-rotated  <ISO 8601 UTC>
    momento-rotation:failure       reason=<reason> version=<id> at=<ISO 8601 UTC>

A record is trusted only while the version it names still holds AWSCURRENT. The prefix is
deliberately not `momento-token`, so these tags never look like the opt-in tag to a prefix
filter, and the rotator's IAM policy can allow tagging with `momento-rotation:*` keys only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from keyrotation.key_format import KeyFormat

PREFIX = "momento-rotation:"
EXPIRY_TAG = PREFIX + "expiry"
LAST_ROTATED_TAG = PREFIX + "last-rotated"
FAILURE_TAG = PREFIX + "failure"


@dataclass(frozen=True)
class ExpiryRecord:
    version_id: str
    valid_until: int
    lifetime_seconds: int | None
    key_format: KeyFormat

    def to_tag(self) -> str:
        lifetime = "unknown" if self.lifetime_seconds is None else str(self.lifetime_seconds)
        return (
            f"version={self.version_id} valid_until={self.valid_until} "
            f"lifetime={lifetime} format={self.key_format.value}"
        )


@dataclass(frozen=True)
class FailureRecord:
    reason: str
    version_id: str
    at: str

    def to_tag(self) -> str:
        return f"reason={self.reason} version={self.version_id} at={self.at}"


def parse_expiry(value: str | None) -> ExpiryRecord | None:
    """The record in an expiry tag, or None when it is absent or unreadable."""
    fields = _fields(value)
    try:
        lifetime = fields.get("lifetime", "unknown")
        return ExpiryRecord(
            version_id=fields["version"],
            valid_until=int(fields["valid_until"]),
            lifetime_seconds=None if lifetime == "unknown" else int(lifetime),
            key_format=KeyFormat(fields["format"]),
        )
    except (KeyError, ValueError):
        return None


def parse_failure(value: str | None) -> FailureRecord | None:
    fields = _fields(value)
    if "reason" not in fields or "version" not in fields:
        return None
    return FailureRecord(fields["reason"], fields["version"], fields.get("at", ""))


def utc_stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    pairs = (part.split("=", 1) for part in value.split() if "=" in part)
    return {key: val for key, val in pairs}
