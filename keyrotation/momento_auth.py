"""A small client for Momento's auth API: refresh a key, and check that a key authenticates.

The Python SDK has no refresh call, so this speaks `/auth.Auth/RefreshApiToken` directly with
the SDK's own wire types, and follows the SDK's channel rule: port 443 means TLS with the
system roots, any other port a plain-text channel (which is how the local stand-in is reached).
Keys and refresh tokens travel only in request bodies and the `authorization` header; they never
appear in an exception raised here.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass

import grpc
from momento_wire_types import auth_pb2, auth_pb2_grpc, controlclient_pb2, controlclient_pb2_grpc

from keyrotation.errors import MomentoUnavailable, RefreshRejected, VerificationFailed
from keyrotation.key_format import KeyInfo, encode_v1_key

AGENT = "python:momento-key-rotation:0.1.0"
TLS_PORT = 443
DETAIL_LIMIT = 160
_TOKEN_LIKE = re.compile(
    r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # a JWT
    r"|[A-Za-z0-9_\-+/=]{24,}"  # a long token of any other shape
)

RETRYABLE_STATUSES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
# A key scoped to data operations gets PERMISSION_DENIED on the control plane: it authenticated.
AUTHENTICATED_STATUSES = frozenset({grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED})


@dataclass(frozen=True)
class RefreshedKey:
    """Momento's answer to a refresh. `valid_until` is epoch seconds, 0 meaning never."""

    stored_key: str
    refresh_token: str
    endpoint: str
    valid_until: int

    def __repr__(self) -> str:  # never show the key or the token
        return f"RefreshedKey(endpoint={self.endpoint!r}, valid_until={self.valid_until})"


class MomentoAuth:
    """Calls Momento's control endpoints, reusing one channel per target across invocations."""

    def __init__(self, endpoint_override: str | None = None, timeout_seconds: float = 10.0):
        self._override = endpoint_override
        self._timeout = timeout_seconds
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def refresh(self, secret_id: str, key: KeyInfo, refresh_token: str) -> RefreshedKey:
        """Exchange a key and its refresh token for a new pair.

        Raises `MomentoUnavailable` for statuses worth retrying and `RefreshRejected` for the
        rest (an expired key, a used or wrong refresh token, an unknown key).
        """
        channel = self._channel(secret_id, key)
        stub = auth_pb2_grpc.AuthStub(channel)  # type: ignore[no-untyped-call]
        request = auth_pb2._RefreshApiTokenRequest(
            api_key=key.inner_jwt, refresh_token=refresh_token
        )
        try:
            response = stub.RefreshApiToken(request, timeout=self._timeout, metadata=_headers())
        except grpc.RpcError as error:
            status, detail = _status(error, key.inner_jwt, refresh_token)
            if status in RETRYABLE_STATUSES:
                raise MomentoUnavailable(
                    secret_id, f"refresh failed: {status.name}{detail}"
                ) from None
            raise RefreshRejected(
                secret_id, f"Momento refused the refresh: {status.name}{detail}"
            ) from None

        if not response.api_key or not response.refresh_token or not response.endpoint:
            raise RefreshRejected(
                secret_id, "Momento's refresh answer lacks the key, token or endpoint"
            )
        return RefreshedKey(
            stored_key=encode_v1_key(response.endpoint, response.api_key),
            refresh_token=response.refresh_token,
            endpoint=response.endpoint,
            valid_until=int(response.valid_until),
        )

    def verify(self, secret_id: str, key: KeyInfo) -> None:
        """Prove a key authenticates with a control-plane call (listing caches).

        Raises `VerificationFailed` when Momento does not accept the key and
        `MomentoUnavailable` when the answer was a retryable fault.
        """
        channel = self._channel(secret_id, key)
        stub = controlclient_pb2_grpc.ScsControlStub(channel)  # type: ignore[no-untyped-call]
        metadata = (*_headers(), ("authorization", key.inner_jwt))
        try:
            stub.ListCaches(
                controlclient_pb2._ListCachesRequest(), timeout=self._timeout, metadata=metadata
            )
        except grpc.RpcError as error:
            status, detail = _status(error, key.inner_jwt)
            if status in AUTHENTICATED_STATUSES:
                return
            if status in RETRYABLE_STATUSES:
                raise MomentoUnavailable(
                    secret_id, f"verify failed: {status.name}{detail}"
                ) from None
            raise VerificationFailed(
                secret_id, f"Momento refused the new key: {status.name}{detail}"
            ) from None

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _channel(self, secret_id: str, key: KeyInfo) -> grpc.Channel:
        target = self._override or key.control_endpoint
        if not target:
            raise RefreshRejected(secret_id, f"a {key.format} key names no control endpoint")
        if ":" not in target:
            target = f"{target}:{TLS_PORT}"
        with self._lock:
            channel = self._channels.get(target)
            if channel is None:
                channel = _open_channel(target)
                self._channels[target] = channel
            return channel


def _open_channel(target: str) -> grpc.Channel:
    port = target.rsplit(":", 1)[1]
    if port == str(TLS_PORT):
        return grpc.secure_channel(target, grpc.ssl_channel_credentials())
    # A plain-text target is a local stand-in: never send it through an HTTP proxy.
    return grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])


def _headers() -> tuple[tuple[str, str], ...]:
    return (("agent", AGENT), ("runtime-version", f"python {sys.version.split()[0]}"))


def _status(error: grpc.RpcError, *secrets: str) -> tuple[grpc.StatusCode, str]:
    """The status of a failed call and a short detail with any secret material blanked out."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    detail = (error.details() if isinstance(error, grpc.Call) else "") or ""
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "<redacted>")
    # Anything shaped like a JWT or a long token is blanked too, in case a server echoes a
    # truncated or re-encoded credential.
    detail = _TOKEN_LIKE.sub("<redacted>", detail)
    detail = " ".join(detail.split())[:DETAIL_LIMIT]
    return code, f" ({detail})" if detail else ""
