"""What kind of Momento key a secret holds, where to refresh it, and for how long it lives.

| format     | how it is told apart                             | control endpoint           |
| ---------- | ------------------------------------------------ | -------------------------- |
| legacy-jwt | a JWT with `cp` and `c` claims                   | the `cp` claim             |
| v1         | base64 of JSON `{"endpoint", "api_key"}`         | `control.<endpoint>`       |
| v2         | a JWT with claim `t == "g"`                      | none: it cannot be refreshed |
| disposable | v1 form, no refresh token, at most a day of life | none: it cannot be refreshed |
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from momento.auth import momento_endpoint_resolver as sdk_resolver
from momento.errors import SdkException

from keyrotation.errors import MalformedSecret

DISPOSABLE_MAX_LIFETIME = 86_400 + 3_600


class KeyFormat(StrEnum):
    LEGACY_JWT = "legacy-jwt"
    V1 = "v1"
    V2 = "v2"
    DISPOSABLE = "disposable"


REFRESHABLE_FORMATS = frozenset({KeyFormat.LEGACY_JWT, KeyFormat.V1})


@dataclass(frozen=True)
class KeyInfo:
    """Facts read from a key without verifying its signature. Times are epoch seconds."""

    format: KeyFormat
    inner_jwt: str
    control_endpoint: str | None
    issued_at: int | None
    expires_at: int | None

    @property
    def lifetime_seconds(self) -> int | None:
        if self.issued_at is None or self.expires_at is None:
            return None
        return max(0, self.expires_at - self.issued_at)

    def __repr__(self) -> str:  # never show the key
        return f"KeyInfo(format={self.format}, control_endpoint={self.control_endpoint!r})"


def inspect_key(secret_id: str, api_key: str, refresh_token: str | None = None) -> KeyInfo:
    """Classify `api_key`, raising `MalformedSecret` when it is neither form of Momento key.

    The endpoints come from the Momento SDK's own resolver, so this tool sends a key exactly
    where the SDK would.
    """
    if is_base64(api_key):
        return _inspect_v1(secret_id, api_key, refresh_token)
    claims = _claims(secret_id, api_key)
    if claims.get("t") == "g":
        return KeyInfo(KeyFormat.V2, api_key, None, _epoch(claims, "iat"), _epoch(claims, "exp"))
    control = _sdk_control_endpoint(secret_id, api_key)
    return KeyInfo(
        KeyFormat.LEGACY_JWT, api_key, control, _epoch(claims, "iat"), _epoch(claims, "exp")
    )


def is_base64(value: str) -> bool:
    """True when decoding and re-encoding gives back exactly `value` (the SDKs' own rule)."""
    return bool(sdk_resolver._is_base64(value))


def encode_v1_key(endpoint: str, inner_jwt: str) -> str:
    """The stored form of a v1 key, as Momento's console and SDKs produce it."""
    payload = json.dumps({"endpoint": endpoint, "api_key": inner_jwt}, separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


def _inspect_v1(secret_id: str, api_key: str, refresh_token: str | None) -> KeyInfo:
    try:
        wrapper = json.loads(base64.b64decode(api_key))
    except ValueError:
        raise MalformedSecret(secret_id, "the key is base64 but not of JSON") from None
    if not isinstance(wrapper, dict):
        raise MalformedSecret(secret_id, "the key is base64 but not of a JSON object")
    endpoint, inner = wrapper.get("endpoint"), wrapper.get("api_key")
    if not isinstance(endpoint, str) or not endpoint or not isinstance(inner, str) or not inner:
        raise MalformedSecret(secret_id, "the base64 key lacks its endpoint or api_key")

    claims = _claims(secret_id, inner)
    issued_at, expires_at = _epoch(claims, "iat"), _epoch(claims, "exp")
    control = _sdk_control_endpoint(secret_id, api_key)
    info = KeyInfo(KeyFormat.V1, inner, control, issued_at, expires_at)
    lifetime = info.lifetime_seconds
    if refresh_token is None and lifetime is not None and lifetime <= DISPOSABLE_MAX_LIFETIME:
        return KeyInfo(KeyFormat.DISPOSABLE, inner, info.control_endpoint, issued_at, expires_at)
    return info


def _sdk_control_endpoint(secret_id: str, api_key: str) -> str:
    try:
        resolved = sdk_resolver.resolve(api_key)
    except (SdkException, ValueError, KeyError, TypeError):
        raise MalformedSecret(secret_id, "the key lacks the endpoint Momento's SDK needs") from None
    return str(resolved.control_endpoint)


def _claims(secret_id: str, token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        raise MalformedSecret(secret_id, "the key is neither a JWT nor a base64 v1 key") from None
    if not isinstance(claims, dict):
        raise MalformedSecret(secret_id, "the key's JWT claims are not an object")
    return claims


def _epoch(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None
