"""The rotator's state on each secret, as tags the scanner can read without reading values."""

from __future__ import annotations

import re

import pytest

from keyrotation import errors, messages, secrets, state_tags
from keyrotation.key_format import KeyFormat
from keyrotation.state_tags import ExpiryRecord, FailureRecord

# What Secrets Manager accepts in a tag value (and at most 256 of them).
TAG_VALUE = re.compile(r"[A-Za-z0-9 _.:/=+\-@]{0,256}")
VERSION_ID = "a1b2c3d4-5678-90ab-cdef-111122223333"


@pytest.mark.parametrize("key_format", list(KeyFormat), ids=[f.value for f in KeyFormat])
@pytest.mark.parametrize("lifetime", [30 * 86_400, 0, None], ids=["30-days", "zero", "unknown"])
def test_expiry_record_round_trips_through_its_tag(
    key_format: KeyFormat, lifetime: int | None
) -> None:
    # GIVEN an expiry record
    record = ExpiryRecord(VERSION_ID, 1_800_000_000, lifetime, key_format)

    # WHEN it is written as a tag and read back
    # THEN the same record comes back
    assert state_tags.parse_expiry(record.to_tag()) == record


def test_failure_record_round_trips_through_its_tag() -> None:
    record = FailureRecord("key-expired", VERSION_ID, state_tags.utc_stamp(1_800_000_000))
    assert state_tags.parse_failure(record.to_tag()) == record


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"version={VERSION_ID} lifetime=1 format=v1",
        f"version={VERSION_ID} valid_until=soon lifetime=1 format=v1",
        f"version={VERSION_ID} valid_until=1 lifetime=long format=v1",
        f"version={VERSION_ID} valid_until=1 lifetime=1 format=v9",
        f"version={VERSION_ID} valid_until=1 lifetime=1",
    ],
    ids=[
        "absent",
        "empty",
        "no-fields",
        "no-valid-until",
        "valid-until-not-a-number",
        "lifetime-not-a-number",
        "unknown-format",
        "no-format",
    ],
)
def test_parse_expiry_reads_unreadable_tags_as_none(value: str | None) -> None:
    # GIVEN a tag value someone edited, or an older layout
    # WHEN it is read
    # THEN no record is trusted
    assert state_tags.parse_expiry(value) is None


@pytest.mark.parametrize(
    "value",
    [None, "", "at=2027-01-01T00:00:00Z", "reason=key-expired", f"version={VERSION_ID}"],
    ids=["absent", "empty", "only-a-time", "no-version", "no-reason"],
)
def test_parse_failure_reads_unreadable_tags_as_none(value: str | None) -> None:
    assert state_tags.parse_failure(value) is None


PERMANENT_REASONS = sorted(
    {
        cls.reason
        for cls in (
            errors.MalformedSecret,
            errors.NotRefreshable,
            errors.KeyExpired,
            errors.RefreshRejected,
            errors.VerificationFailed,
            errors.PermanentError,
            secrets.AwsCallFailed,
            messages.MalformedMessage,
        )
    }
)


@pytest.mark.parametrize("reason", PERMANENT_REASONS)
def test_failure_tag_uses_only_characters_tag_values_allow(reason: str) -> None:
    record = FailureRecord(reason, VERSION_ID, state_tags.utc_stamp(1_800_000_000.5))
    assert TAG_VALUE.fullmatch(record.to_tag())


@pytest.mark.parametrize("key_format", list(KeyFormat), ids=[f.value for f in KeyFormat])
@pytest.mark.parametrize("lifetime", [31_536_000, None], ids=["a-year", "unknown"])
def test_expiry_tag_uses_only_characters_tag_values_allow(
    key_format: KeyFormat, lifetime: int | None
) -> None:
    record = ExpiryRecord(VERSION_ID, 99_999_999_999, lifetime, key_format)
    assert TAG_VALUE.fullmatch(record.to_tag())


def test_utc_stamp_is_iso_8601_utc_and_allowed_in_tag_values() -> None:
    stamp = state_tags.utc_stamp(1_800_000_000)
    assert stamp == "2027-01-15T08:00:00Z"
    assert TAG_VALUE.fullmatch(stamp)


def test_state_tag_keys_do_not_look_like_the_opt_in_tag() -> None:
    # GIVEN the tag keys the rotator writes
    written = (state_tags.EXPIRY_TAG, state_tags.LAST_ROTATED_TAG, state_tags.FAILURE_TAG)

    # THEN none would match a prefix filter on the default opt-in tag
    assert not any(key.startswith("momento-token") for key in written)
    assert all(TAG_VALUE.fullmatch(key) for key in written)
