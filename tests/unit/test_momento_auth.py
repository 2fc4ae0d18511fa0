"""Momento's auth API client: channel choice, status mapping, and no secrets in its errors.

No channel is ever opened: `grpc`'s channel constructors and the generated stubs are replaced.
"""

from __future__ import annotations

import grpc
import pytest
from momento_wire_types import auth_pb2

from keyrotation import momento_auth
from keyrotation.errors import MomentoUnavailable, RefreshRejected, VerificationFailed
from keyrotation.key_format import KeyFormat, KeyInfo, encode_v1_key
from keyrotation.momento_auth import MomentoAuth

SECRET = "momento/app"
INNER_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZXktbWF0ZXJpYWwifQ.c2lnbmF0dXJl"
REFRESH_TOKEN = "rt-secret-material-4c1d"


class FailedCall(grpc.RpcError, grpc.Call):
    """What a failed unary call raises: an RpcError that is also a Call."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple:
        return ()

    def trailing_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


def _key(control: str | None = "control.cell-1.example.com") -> KeyInfo:
    return KeyInfo(KeyFormat.V1, INNER_KEY, control, 1, 2)


@pytest.fixture
def channels(monkeypatch) -> list[tuple[str, str]]:
    """Every channel the client asks grpc for, as (kind, target)."""
    opened: list[tuple[str, str]] = []

    def secure(target, credentials, options=None):
        opened.append(("secure", target))
        return f"secure:{target}"

    def insecure(target, options=None):
        opened.append(("insecure", target))
        return f"insecure:{target}"

    monkeypatch.setattr(momento_auth.grpc, "secure_channel", secure)
    monkeypatch.setattr(momento_auth.grpc, "insecure_channel", insecure)
    monkeypatch.setattr(momento_auth.grpc, "ssl_channel_credentials", lambda: "system-roots")
    return opened


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("control.cell-1.example.com:443", "secure"),
        ("127.0.0.1:50051", "insecure"),
        ("localhost:8443", "insecure"),
        ("[::1]:9000", "insecure"),
    ],
    ids=["tls-port", "local-stand-in", "other-port", "ipv6-literal"],
)
def test_open_channel_uses_tls_on_port_443_only(channels, target: str, kind: str) -> None:
    momento_auth._open_channel(target)
    assert channels == [(kind, target)]


@pytest.mark.parametrize(
    ("override", "control", "expected"),
    [
        (None, "control.cell-1.example.com", ("secure", "control.cell-1.example.com:443")),
        ("127.0.0.1:50051", "control.cell-1.example.com", ("insecure", "127.0.0.1:50051")),
        ("control.test.example.com", None, ("secure", "control.test.example.com:443")),
    ],
    ids=["key-endpoint-gets-port-443", "override-wins", "override-without-port"],
)
def test_channel_targets_the_control_endpoint_or_the_override(
    channels, override, control, expected
) -> None:
    # GIVEN a client, with or without an endpoint override
    client = MomentoAuth(endpoint_override=override)

    # WHEN it needs a channel twice for a key
    client._channel(SECRET, _key(control))
    client._channel(SECRET, _key(control))

    # THEN one channel is opened, to the right target, and reused
    assert channels == [expected]


def test_channel_refuses_a_key_with_no_control_endpoint(channels) -> None:
    with pytest.raises(RefreshRejected, match=SECRET):
        MomentoAuth()._channel(SECRET, KeyInfo(KeyFormat.V2, INNER_KEY, None, None, None))
    assert channels == []


def test_status_blanks_secret_material_out_of_server_details() -> None:
    # GIVEN a server whose error details echo the key and the refresh token
    error = FailedCall(
        grpc.StatusCode.UNAUTHENTICATED,
        f"bad key {INNER_KEY}\n for token {REFRESH_TOKEN}",
    )

    # WHEN the status is read
    code, detail = momento_auth._status(error, INNER_KEY, REFRESH_TOKEN)

    # THEN the code is kept and neither secret remains in the detail
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert INNER_KEY not in detail and REFRESH_TOKEN not in detail
    assert detail == " (bad key <redacted> for token <redacted>)"


def test_status_keeps_details_short() -> None:
    _, detail = momento_auth._status(FailedCall(grpc.StatusCode.INTERNAL, "too busy " * 200))
    assert len(detail) == momento_auth.DETAIL_LIMIT + len(" ()")


@pytest.mark.parametrize(
    "echo",
    [
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZWFtLWEiLCJleHAiOjE4MDB9.c2lnbmF0dXJlLWJ5dGVz",
        "dGhpcyBpcyBhIGxvbmcgYmFzZTY0IHRva2VuIGVjaG9lZCBiYWNr",
    ],
    ids=["a-jwt-echoed-back", "a-long-base64-token"],
)
def test_status_blanks_anything_shaped_like_a_credential(echo: str) -> None:
    # GIVEN a server whose error detail echoes a token this client did not send verbatim
    error = FailedCall(grpc.StatusCode.INVALID_ARGUMENT, f"bad token {echo} rejected")

    # WHEN the detail is prepared for an exception message
    _, detail = momento_auth._status(error, "something-else")

    # THEN the token is gone and the rest of the sentence stays readable
    assert echo not in detail
    assert detail == " (bad token <redacted> rejected)"


def test_status_of_an_error_that_is_not_a_call_is_unknown() -> None:
    assert momento_auth._status(grpc.RpcError()) == (grpc.StatusCode.UNKNOWN, "")


# Refresh and verify, with the generated stubs replaced -------------------------------------------


class FakeStub:
    answer: object = None
    calls: list[tuple[str, object, object]] = []

    def __init__(self, channel) -> None:
        self.channel = channel

    def RefreshApiToken(self, request, timeout, metadata):
        return self._respond("refresh", request, metadata)

    def ListCaches(self, request, timeout, metadata):
        return self._respond("list-caches", request, metadata)

    def _respond(self, method, request, metadata):
        FakeStub.calls.append((method, request, dict(metadata)))
        if isinstance(FakeStub.answer, Exception):
            raise FakeStub.answer
        return FakeStub.answer


@pytest.fixture
def stub(monkeypatch, channels) -> type[FakeStub]:
    FakeStub.answer, FakeStub.calls = None, []
    monkeypatch.setattr(momento_auth.auth_pb2_grpc, "AuthStub", FakeStub)
    monkeypatch.setattr(momento_auth.controlclient_pb2_grpc, "ScsControlStub", FakeStub)
    return FakeStub


def test_refresh_sends_the_inner_key_and_token_and_returns_a_v1_key(stub) -> None:
    # GIVEN Momento answers with a new key pair
    stub.answer = auth_pb2._RefreshApiTokenResponse(
        api_key="new-inner-jwt",
        refresh_token="new-refresh-token",
        endpoint="cell-1.example.com",
        valid_until=1_900_000_000,
    )

    # WHEN a key is refreshed
    refreshed = MomentoAuth().refresh(SECRET, _key(), REFRESH_TOKEN)

    # THEN the request carried the raw inner key and the token, with the agent header
    [(method, request, metadata)] = stub.calls
    assert (method, request.api_key, request.refresh_token) == ("refresh", INNER_KEY, REFRESH_TOKEN)
    assert metadata["agent"] == momento_auth.AGENT

    # AND the answer is stored in the v1 form, with its token and expiry
    assert refreshed.stored_key == encode_v1_key("cell-1.example.com", "new-inner-jwt")
    assert (refreshed.refresh_token, refreshed.valid_until) == ("new-refresh-token", 1_900_000_000)
    assert "new-inner-jwt" not in repr(refreshed) and "new-refresh-token" not in repr(refreshed)


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        (grpc.StatusCode.UNAVAILABLE, MomentoUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, MomentoUnavailable),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, MomentoUnavailable),
        (grpc.StatusCode.INTERNAL, MomentoUnavailable),
        (grpc.StatusCode.UNAUTHENTICATED, RefreshRejected),
        (grpc.StatusCode.INVALID_ARGUMENT, RefreshRejected),
        (grpc.StatusCode.PERMISSION_DENIED, RefreshRejected),
        (grpc.StatusCode.NOT_FOUND, RefreshRejected),
    ],
    ids=lambda value: getattr(value, "name", None) or getattr(value, "__name__", ""),
)
def test_refresh_maps_failed_statuses_without_leaking_secrets(stub, code, raised) -> None:
    # GIVEN Momento fails the refresh with `code`, echoing the credentials back
    stub.answer = FailedCall(code, f"rejected {INNER_KEY} / {REFRESH_TOKEN}")

    # WHEN a key is refreshed
    with pytest.raises(raised) as error:
        MomentoAuth().refresh(SECRET, _key(), REFRESH_TOKEN)

    # THEN the error is retryable or permanent by status, names the secret, and leaks nothing
    message = str(error.value)
    assert message.startswith(SECRET) and code.name in message
    assert INNER_KEY not in message and REFRESH_TOKEN not in message


@pytest.mark.parametrize("missing", ["api_key", "refresh_token", "endpoint"])
def test_refresh_refuses_an_incomplete_answer(stub, missing: str) -> None:
    # GIVEN Momento answers a refresh without one of the parts a stored key needs
    fields = {"api_key": "k", "refresh_token": "t", "endpoint": "e", "valid_until": 5}
    stub.answer = auth_pb2._RefreshApiTokenResponse(**{**fields, missing: ""})

    # WHEN a key is refreshed
    # THEN the answer is refused rather than stored half-made
    with pytest.raises(RefreshRejected):
        MomentoAuth().refresh(SECRET, _key(), REFRESH_TOKEN)


@pytest.mark.parametrize(
    "answer",
    [object(), FailedCall(grpc.StatusCode.PERMISSION_DENIED)],
    ids=["ok", "permission-denied-is-still-authenticated"],
)
def test_verify_accepts_any_key_that_authenticates(stub, answer) -> None:
    # GIVEN Momento answers a control-plane call made with the new key
    stub.answer = answer

    # WHEN the key is verified
    MomentoAuth().verify(SECRET, _key())

    # THEN nothing is raised, and the call carried the key as its authorization
    [(method, _, metadata)] = stub.calls
    assert (method, metadata["authorization"]) == ("list-caches", INNER_KEY)


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, VerificationFailed),
        (grpc.StatusCode.UNAVAILABLE, MomentoUnavailable),
    ],
    ids=["unauthenticated", "unavailable"],
)
def test_verify_raises_when_the_key_does_not_authenticate(stub, code, raised) -> None:
    # GIVEN Momento fails the control-plane call made with the new key
    stub.answer = FailedCall(code, f"no such key {INNER_KEY}")

    # WHEN the key is verified
    # THEN the failure is raised by kind, without the key in its message
    with pytest.raises(raised) as error:
        MomentoAuth().verify(SECRET, _key())
    assert INNER_KEY not in str(error.value)


def test_close_forgets_every_channel(monkeypatch) -> None:
    # GIVEN a client that opened channels to two control endpoints
    closed: list[str] = []

    class Channel:
        def __init__(self, target: str) -> None:
            self.target = target

        def close(self) -> None:
            closed.append(self.target)

    monkeypatch.setattr(momento_auth, "_open_channel", Channel)
    client = MomentoAuth()
    client._channel(SECRET, _key("control.a.example.com"))
    client._channel(SECRET, _key("control.b.example.com"))

    # WHEN it is closed
    client.close()

    # THEN both channels are closed and none is kept for reuse
    assert sorted(closed) == ["control.a.example.com:443", "control.b.example.com:443"]
    assert client._channels == {}
