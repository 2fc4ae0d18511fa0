"""The stored secret is a public contract: read every known shape, write the same shape back."""

from __future__ import annotations

import json

import pytest

from keyrotation import secret_value
from keyrotation.errors import MalformedSecret

SECRET = "momento/authentication-token"
KEY_TEXT = "key-material-7d41"
TOKEN_TEXT = "refresh-material-93ab"


@pytest.mark.parametrize("key_field", ["apiKey", "authToken", "apiToken"])
def test_parse_secret_reads_every_key_field_spelling(key_field: str) -> None:
    # GIVEN a secret written under one of the three field names seen in the wild
    value = json.dumps({key_field: KEY_TEXT, "refreshToken": TOKEN_TEXT, "validUntil": "1"})

    # WHEN it is parsed
    parsed = secret_value.parse_secret(SECRET, value)

    # THEN the key, its field name and the refresh token are found
    assert (parsed.api_key, parsed.key_field, parsed.refresh_token) == (
        KEY_TEXT,
        key_field,
        TOKEN_TEXT,
    )


@pytest.mark.parametrize("key_field", ["apiKey", "authToken", "apiToken"])
def test_with_refreshed_key_writes_back_under_the_field_found(key_field: str) -> None:
    # GIVEN a parsed secret that uses one field name
    parsed = secret_value.parse_secret(SECRET, json.dumps({key_field: KEY_TEXT}))

    # WHEN the refreshed key is rendered
    written = json.loads(parsed.with_refreshed_key("new-key", "new-token", 1_900_000_000))

    # THEN it sits under that same name, and no other key field appears
    assert written[key_field] == "new-key"
    assert written["refreshToken"] == "new-token"
    assert set(written) & set(secret_value.KEY_FIELDS) == {key_field}


def test_with_refreshed_key_keeps_fields_it_does_not_own() -> None:
    # GIVEN a secret with extra fields an application relies on
    extra = {"endpoint": "cell-1", "owner": {"team": "payments", "tier": 1}, "note": None}
    parsed = secret_value.parse_secret(
        SECRET, json.dumps({"apiKey": KEY_TEXT, "validUntil": "5", **extra})
    )

    # WHEN the refreshed key is rendered
    written = json.loads(parsed.with_refreshed_key("new-key", "new-token", 9))

    # THEN every unknown field is still there, unchanged
    assert {name: written[name] for name in extra} == extra


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("1800000000", "1900000000"), (1_800_000_000, 1_900_000_000)],
    ids=["string-stays-string", "number-stays-number"],
)
def test_with_refreshed_key_keeps_the_type_of_valid_until(stored: object, expected: object) -> None:
    # GIVEN a secret whose validUntil is a string or a number
    parsed = secret_value.parse_secret(
        SECRET, json.dumps({"apiKey": KEY_TEXT, "validUntil": stored})
    )

    # WHEN a key valid until 1900000000 is rendered
    written = json.loads(parsed.with_refreshed_key("new-key", "new-token", 1_900_000_000))

    # THEN validUntil has the type it had before
    assert written["validUntil"] == expected
    assert type(written["validUntil"]) is type(expected)


@pytest.mark.parametrize(
    "document",
    [
        {"apiKey": KEY_TEXT},
        {"apiKey": KEY_TEXT, "validUntil": 0},
        {"apiKey": KEY_TEXT, "validUntil": "0"},
        {"apiKey": KEY_TEXT, "validUntil": ""},
        {"apiKey": KEY_TEXT, "validUntil": None},
    ],
    ids=["missing", "zero", "zero-string", "empty-string", "null"],
)
def test_parse_secret_reads_absent_valid_until_as_never_expires(document: dict) -> None:
    # GIVEN a secret with no usable expiry
    # WHEN it is parsed
    parsed = secret_value.parse_secret(SECRET, json.dumps(document))

    # THEN it never expires (0)
    assert parsed.valid_until == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1800000000", 1_800_000_000), (" 1800000000 ", 1_800_000_000), (1.8e9 + 0.7, 1_800_000_000)],
    ids=["string", "padded-string", "fractional-number"],
)
def test_parse_valid_until_reads_epoch_seconds(raw: object, expected: int) -> None:
    assert secret_value.parse_valid_until(SECRET, raw) == expected


@pytest.mark.parametrize(
    "raw",
    [1_800_000_000_000, "1800000000000", secret_value.MILLISECONDS_THRESHOLD],
    ids=["number", "string", "at-threshold"],
)
def test_parse_valid_until_refuses_milliseconds(raw: object) -> None:
    # GIVEN a validUntil in milliseconds
    # WHEN it is parsed
    # THEN it is refused with a message that says why
    with pytest.raises(MalformedSecret, match="milliseconds"):
        secret_value.parse_valid_until(SECRET, raw)


def test_parse_valid_until_accepts_the_largest_plausible_seconds() -> None:
    largest = secret_value.MILLISECONDS_THRESHOLD - 1
    assert secret_value.parse_valid_until(SECRET, largest) == largest


@pytest.mark.parametrize(
    "raw",
    [True, -5, "soon", "nan", [1_800_000_000], {"seconds": 1}],
    ids=["boolean", "negative", "word", "nan", "list", "object"],
)
def test_parse_valid_until_refuses_values_that_are_not_seconds(raw: object) -> None:
    with pytest.raises(MalformedSecret):
        secret_value.parse_valid_until(SECRET, raw)


MALFORMED_VALUES = {
    "not-json": f'{{"apiKey": "{KEY_TEXT}", "refreshToken": "{TOKEN_TEXT}"',
    "json-array": json.dumps([KEY_TEXT, TOKEN_TEXT]),
    "json-string": json.dumps(KEY_TEXT),
    "binary": None,
    "no-key-field": json.dumps({"key": KEY_TEXT, "refreshToken": TOKEN_TEXT}),
    "empty-key": json.dumps({"apiKey": "", "refreshToken": TOKEN_TEXT}),
    "blank-key": json.dumps({"apiKey": "   ", "refreshToken": TOKEN_TEXT}),
    "key-not-a-string": json.dumps({"apiKey": 7341, "refreshToken": TOKEN_TEXT}),
    "refresh-token-not-a-string": json.dumps({"apiKey": KEY_TEXT, "refreshToken": 93_007}),
    "valid-until-milliseconds": json.dumps(
        {"apiKey": KEY_TEXT, "refreshToken": TOKEN_TEXT, "validUntil": 1_800_000_000_000}
    ),
}


@pytest.mark.parametrize("value", MALFORMED_VALUES.values(), ids=MALFORMED_VALUES.keys())
def test_parse_secret_refuses_malformed_values_naming_the_secret_only(value: str | None) -> None:
    # GIVEN a stored value that is not a usable Momento secret
    # WHEN it is parsed
    with pytest.raises(MalformedSecret) as raised:
        secret_value.parse_secret(SECRET, value)

    # THEN the error names the secret, and carries none of the stored material
    message = str(raised.value)
    assert raised.value.secret_id == SECRET
    assert message.startswith(SECRET)
    for material in (KEY_TEXT, TOKEN_TEXT, "7341", "93007", "1800000000000"):
        assert material not in message


def test_parse_secret_prefers_api_key_when_several_fields_are_present() -> None:
    # GIVEN a secret that carries the console's field and an old one
    value = json.dumps({"authToken": "old-key", "apiKey": KEY_TEXT})

    # WHEN it is parsed
    parsed = secret_value.parse_secret(SECRET, value)

    # THEN the console's field wins
    assert (parsed.key_field, parsed.api_key) == ("apiKey", KEY_TEXT)


def test_parse_secret_reads_an_empty_refresh_token_as_none() -> None:
    parsed = secret_value.parse_secret(SECRET, json.dumps({"apiKey": KEY_TEXT, "refreshToken": ""}))
    assert parsed.refresh_token is None


def test_token_secret_repr_shows_neither_key_nor_token() -> None:
    # GIVEN a parsed secret
    parsed = secret_value.parse_secret(
        SECRET, json.dumps({"apiKey": KEY_TEXT, "refreshToken": TOKEN_TEXT, "validUntil": 7})
    )

    # WHEN it is shown, as a log line or a failed assertion would
    shown = repr(parsed) + str(parsed) + f"{parsed}"

    # THEN the secret is named, and no key material appears
    assert SECRET in shown
    assert KEY_TEXT not in shown
    assert TOKEN_TEXT not in shown


def test_with_refreshed_key_updates_every_field_that_held_the_same_key() -> None:
    # GIVEN a secret written for old and new readers: the same key under apiKey and authToken,
    # and an unrelated apiToken
    document = {
        "apiKey": "old-key",
        "authToken": "old-key",
        "apiToken": "other",
        "refreshToken": "rt",
        "validUntil": "100",
    }
    secret = secret_value.parse_secret("s", json.dumps(document))

    # WHEN the refreshed key is written back
    written = json.loads(secret.with_refreshed_key("new-key", "new-rt", 200))

    # THEN both readers get the new key, and the unrelated field is left alone
    assert (written["apiKey"], written["authToken"], written["apiToken"]) == (
        "new-key",
        "new-key",
        "other",
    )
