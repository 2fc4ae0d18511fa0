"""Telling Momento key formats apart, and where each is refreshed."""

from __future__ import annotations

import base64
import json

import pytest

from keyrotation import key_format
from keyrotation.errors import MalformedSecret
from keyrotation.key_format import KeyFormat
from keyrotation.settings import DAY

SECRET = "momento/authentication-token"


def test_inspect_key_reads_a_legacy_jwt_control_endpoint_from_cp(keys, now) -> None:
    # GIVEN a legacy JWT carrying its endpoints as claims
    api_key = keys.jwt(cp="control.cell-9.example.com", c="cache.cell-9.example.com", iat=now)

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, "refresh")

    # THEN it is a legacy key refreshed at the `cp` host
    assert info.format is KeyFormat.LEGACY_JWT
    assert info.control_endpoint == "control.cell-9.example.com"
    assert info.inner_jwt == api_key


def test_inspect_key_reads_an_expired_legacy_jwt_without_complaint(keys) -> None:
    # GIVEN a legacy JWT whose exp has long passed (its expiry is the rotator's business)
    api_key = keys.legacy(valid_until=1_000_000, lifetime=DAY)

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, "refresh")

    # THEN it is still classified, with its lifetime
    assert (info.format, info.expires_at, info.lifetime_seconds) == (
        KeyFormat.LEGACY_JWT,
        1_000_000,
        DAY,
    )


def test_inspect_key_sends_a_v1_key_to_control_of_its_endpoint(keys, now) -> None:
    # GIVEN a v1 key: base64 of {"endpoint", "api_key"}
    inner = keys.jwt(sub="user", iat=now, exp=now + 30 * DAY)
    api_key = key_format.encode_v1_key("cell-2.example.com", inner)

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, "refresh")

    # THEN it is a v1 key refreshed at control.<endpoint>, with the inner JWT to send
    assert info.format is KeyFormat.V1
    assert info.control_endpoint == "control.cell-2.example.com"
    assert info.inner_jwt == inner


def test_inspect_key_recognises_a_v2_key(keys, now) -> None:
    # GIVEN a JWT with t == "g" and no endpoint claims
    api_key = keys.v2(valid_until=now + DAY)

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, "refresh")

    # THEN it is a v2 key with no control endpoint of its own
    assert (info.format, info.control_endpoint) == (KeyFormat.V2, None)


@pytest.mark.parametrize(
    ("lifetime", "refresh_token", "expected"),
    [
        (DAY, None, KeyFormat.DISPOSABLE),
        (3_600, None, KeyFormat.DISPOSABLE),
        (key_format.DISPOSABLE_MAX_LIFETIME, None, KeyFormat.DISPOSABLE),
        (key_format.DISPOSABLE_MAX_LIFETIME + 1, None, KeyFormat.V1),
        (DAY, "refresh", KeyFormat.V1),
        (30 * DAY, None, KeyFormat.V1),
    ],
    ids=[
        "one-day-no-token",
        "one-hour-no-token",
        "at-the-limit-no-token",
        "just-over-the-limit-no-token",
        "one-day-with-token-stays-v1",
        "thirty-days-no-token",
    ],
)
def test_inspect_key_tells_disposable_tokens_from_v1_keys(
    keys, now, lifetime: int, refresh_token: str | None, expected: KeyFormat
) -> None:
    # GIVEN a v1-form key of some lifetime, with or without a refresh token
    api_key = keys.v1(valid_until=now + lifetime, lifetime=lifetime)

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, refresh_token)

    # THEN short-lived keys without a refresh token are disposable, all others v1
    assert info.format is expected


def test_inspect_key_keeps_a_v1_key_of_unknown_lifetime_as_v1(keys) -> None:
    # GIVEN a v1 key whose inner JWT has no iat/exp, and no refresh token
    api_key = key_format.encode_v1_key("cell-1.example.com", keys.jwt(sub="user"))

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, None)

    # THEN nothing says it is disposable
    assert (info.format, info.lifetime_seconds) == (KeyFormat.V1, None)


def _b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode()


MALFORMED_KEYS = {
    "garbage": lambda keys: "not a key at all",
    "jwt-without-endpoint-claims": lambda keys: keys.jwt(sub="user", iat=1),
    "jwt-with-only-the-cache-claim": lambda keys: keys.jwt(sub="u", c="cache.cell-1.example.com"),
    "base64-of-text": lambda keys: _b64(b"hello, this is not json"),
    "base64-of-a-json-list": lambda keys: _b64(b'["cell-1.example.com"]'),
    "base64-without-endpoint": lambda keys: _b64(json.dumps({"api_key": keys.jwt()}).encode()),
    "base64-with-a-non-jwt-inner-key": lambda keys: _b64(
        json.dumps({"endpoint": "cell-1.example.com", "api_key": "plain"}).encode()
    ),
}


@pytest.mark.parametrize("make_key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
def test_inspect_key_refuses_what_is_not_a_momento_key(keys, make_key) -> None:
    # GIVEN a string that is neither form of Momento key
    api_key = make_key(keys)

    # WHEN it is inspected
    # THEN it is refused as a malformed secret that names the secret, not the key
    with pytest.raises(MalformedSecret) as raised:
        key_format.inspect_key(SECRET, api_key, "refresh")
    assert str(raised.value).startswith(SECRET)
    assert api_key not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (_b64(b"exactly-padded!"), True),
        (_b64(b"needs=padding"), True),
        (_b64(b"needs=padding").rstrip("="), False),
        ("aGVsbG8\n", False),
        ("header.payload.signature", False),
    ],
    ids=["no-padding-needed", "padded", "padding-stripped", "trailing-newline", "jwt-shape"],
)
def test_is_base64_requires_an_exact_round_trip(value: str, expected: bool) -> None:
    assert key_format.is_base64(value) is expected


def test_inspect_key_does_not_take_unpadded_base64_for_a_v1_key(keys, now) -> None:
    # GIVEN a v1 key whose base64 padding was stripped (as a copy-paste might do); of three
    # consecutive payload lengths, at least one needs padding
    candidates = (keys.v1(now + DAY, endpoint="c" * n + ".example.com") for n in (1, 2, 3))
    api_key = next(key for key in candidates if key.endswith("="))
    key_format.inspect_key(SECRET, api_key, "refresh")  # the padded form is a fine v1 key
    unpadded = api_key.rstrip("=")

    # WHEN it is inspected
    # THEN it is not read as base64 (and, being no JWT either, it is refused)
    with pytest.raises(MalformedSecret):
        key_format.inspect_key(SECRET, unpadded, "refresh")


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"iat": 1_000, "exp": 1_000 + 7 * DAY}, 7 * DAY),
        ({"iat": 1_000}, None),
        ({"exp": 1_000}, None),
        ({"iat": 5_000, "exp": 1_000}, 0),
        ({"iat": "1000", "exp": "2000"}, None),
    ],
    ids=["both", "no-exp", "no-iat", "exp-before-iat", "non-numeric"],
)
def test_inspect_key_reads_the_lifetime_from_iat_and_exp(
    keys, claims: dict, expected: int | None
) -> None:
    # GIVEN a v1 key whose inner JWT carries these time claims
    api_key = key_format.encode_v1_key("cell-1.example.com", keys.jwt(sub="u", **claims))

    # WHEN it is inspected
    info = key_format.inspect_key(SECRET, api_key, "refresh")

    # THEN the lifetime is exp - iat, or unknown
    assert info.lifetime_seconds == expected


def test_encode_v1_key_round_trips_through_inspect_key(keys, now) -> None:
    # GIVEN an endpoint and an inner JWT, as a refresh returns them
    inner = keys.jwt(sub="user", iat=now, exp=now + 30 * DAY)

    # WHEN they are encoded into the stored form and inspected again
    stored = key_format.encode_v1_key("cell-7.example.com", inner)
    info = key_format.inspect_key(SECRET, stored, "refresh")

    # THEN the same endpoint, key and lifetime come back
    assert key_format.is_base64(stored)
    assert (info.format, info.control_endpoint, info.inner_jwt, info.lifetime_seconds) == (
        KeyFormat.V1,
        "control.cell-7.example.com",
        inner,
        30 * DAY,
    )


def test_key_info_repr_does_not_show_the_key(keys, now) -> None:
    inner = keys.jwt(sub="user", iat=now, exp=now + DAY)
    info = key_format.inspect_key(SECRET, key_format.encode_v1_key("e.example.com", inner), "r")
    assert inner not in repr(info)
