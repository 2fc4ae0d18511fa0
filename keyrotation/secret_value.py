"""The stored secret: the console's `momento_token.info.json`, read and written back faithfully.

Applications read this secret directly, so its shape is a public contract: the key is written
back under the field name it was found in, every field this tool does not own is kept, and
`validUntil` keeps the type it had (string or number).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from keyrotation.errors import MalformedSecret

# `apiKey` is what the console writes; the older rotation Lambda wrote `authToken`, and an
# earlier version of it `apiToken`. Secrets in the wild carry any of the three.
KEY_FIELDS = ("apiKey", "authToken", "apiToken")
REFRESH_TOKEN_FIELD = "refreshToken"
VALID_UNTIL_FIELD = "validUntil"

# Epoch seconds stay below this until the year 5138; a larger number is milliseconds.
MILLISECONDS_THRESHOLD = 100_000_000_000


@dataclass(frozen=True)
class TokenSecret:
    """One parsed secret value. `valid_until` is epoch seconds; 0 means the key never expires."""

    secret_id: str
    document: dict[str, Any]
    key_field: str
    api_key: str
    refresh_token: str | None
    valid_until: int

    def with_refreshed_key(self, api_key: str, refresh_token: str, valid_until: int) -> str:
        """The JSON to store for a refreshed key, in the same shape as this one."""
        document = dict(self.document)
        # A secret written for old and new readers alike holds the same key under several
        # names: every name that held this key gets the new one, so no reader is left behind.
        for name in KEY_FIELDS:
            held = document.get(name)
            if name == self.key_field or (isinstance(held, str) and held.strip() == self.api_key):
                document[name] = api_key
        document[REFRESH_TOKEN_FIELD] = refresh_token
        document[VALID_UNTIL_FIELD] = _same_type(self.document.get(VALID_UNTIL_FIELD), valid_until)
        return json.dumps(document)

    def __repr__(self) -> str:  # never show the key or the token
        return (
            f"TokenSecret(secret_id={self.secret_id!r}, key_field={self.key_field!r}, "
            f"valid_until={self.valid_until})"
        )


def parse_secret(secret_id: str, secret_string: str | None) -> TokenSecret:
    """Read a stored value, raising `MalformedSecret` (naming the secret, never the value)."""
    if secret_string is None:
        raise MalformedSecret(secret_id, "the value is binary, expected the JSON of a Momento key")
    try:
        document = json.loads(secret_string)
    except ValueError:
        raise MalformedSecret(secret_id, "the value is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedSecret(secret_id, "the value is JSON but not an object")

    key_field = next((name for name in KEY_FIELDS if name in document), None)
    if key_field is None:
        raise MalformedSecret(secret_id, "no apiKey field (nor authToken or apiToken)")
    api_key = document[key_field]
    if not isinstance(api_key, str) or not api_key.strip():
        raise MalformedSecret(secret_id, f"field {key_field} is empty or not a string")

    return TokenSecret(
        secret_id=secret_id,
        document=document,
        key_field=key_field,
        api_key=api_key.strip(),
        refresh_token=_refresh_token(secret_id, document.get(REFRESH_TOKEN_FIELD)),
        valid_until=parse_valid_until(secret_id, document.get(VALID_UNTIL_FIELD)),
    )


def parse_valid_until(secret_id: str, raw: object) -> int:
    """Epoch seconds from a string or number; missing, empty or 0 means "never expires"."""
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool):
        raise MalformedSecret(secret_id, "validUntil is a boolean, expected epoch seconds")
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise MalformedSecret(
                secret_id, "validUntil is not a number of epoch seconds"
            ) from None
    elif isinstance(raw, int | float):
        value = float(raw)
    else:
        raise MalformedSecret(secret_id, "validUntil is neither a string nor a number")
    if value != value or value < 0:  # NaN or negative
        raise MalformedSecret(secret_id, "validUntil is negative or not a number")
    if value >= MILLISECONDS_THRESHOLD:
        raise MalformedSecret(
            secret_id, "validUntil looks like milliseconds; it must be epoch seconds"
        )
    return int(value)


def _refresh_token(secret_id: str, raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise MalformedSecret(secret_id, "refreshToken is not a string")
    return raw.strip() or None


def _same_type(original: object, valid_until: int) -> int | str:
    if isinstance(original, int | float) and not isinstance(original, bool):
        return valid_until
    return str(valid_until)
