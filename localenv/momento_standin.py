"""A stand-in for Momento's auth and control services, served over real gRPC on 127.0.0.1.

Momento Local does not serve the auth service, so offline runs of the rotator talk to this
server instead. It speaks the real wire protocol (the `momento-wire-types` messages) on an
insecure channel, which is what Momento's SDKs open for any port other than 443.

Contract, per method (checked in this order):

| call | outcome |
| --- | --- |
| RefreshApiToken, key not issued here, forged, or the base64 form | UNAUTHENTICATED |
| RefreshApiToken, key revoked | UNAUTHENTICATED |
| RefreshApiToken, key expired (`valid_until` != 0 and <= now) | UNAUTHENTICATED "api key expired" |
| RefreshApiToken, refresh token missing or issued for another key | UNAUTHENTICATED |
| RefreshApiToken, refresh token used before | INVALID_ARGUMENT "refresh token already used" |
| RefreshApiToken, otherwise | OK: a new v1 key, same lifetime counted from now |
| ListCaches, live issued key (inner JWT) in `authorization` metadata | OK, one cache |
| ListCaches, key minted with `scope="data"` | PERMISSION_DENIED (it does authenticate) |
| ListCaches, unknown, expired or revoked key | UNAUTHENTICATED |

The methods are `/auth.Auth/RefreshApiToken` and `/control_client.ScsControl/ListCaches`.
A successful refresh marks the old refresh token used; the old key stays valid until its own
expiry. Faults injected with `inject_fault` are answered before any of the rules above.

Run `python -m localenv.momento_standin --port 0` to serve it on its own; it prints
`listening on 127.0.0.1:<port>` and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import secrets
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, Literal, NamedTuple, NoReturn, get_args

import grpc
import jwt
from momento_wire_types import (
    auth_pb2,
    auth_pb2_grpc,
    controlclient_pb2,
    controlclient_pb2_grpc,
)

KeyForm = Literal["v1", "legacy", "v2", "disposable"]
Scope = Literal["all", "data"]
Method = Literal["refresh", "verify"]
Phase = Literal["before", "after"]

DEFAULT_ENDPOINT = "cell-local.momento.test"
DISPOSABLE_MAX_LIFETIME = 86_400
LOCAL_CACHE_NAME = "standin-cache"


@dataclass(frozen=True)
class IssuedKey:
    """A key the stand-in minted. `valid_until` is epoch seconds, 0 meaning it never expires."""

    stored_key: str = field(repr=False)
    inner_jwt: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    valid_until: int
    lifetime_seconds: int
    form: KeyForm

    def as_token_file(self) -> dict[str, str]:
        """The key as Momento's console hands it out (`momento_token.info.json`)."""
        token_file = {"apiKey": self.stored_key, "validUntil": str(self.valid_until)}
        if self.refresh_token is not None:
            token_file["refreshToken"] = self.refresh_token
        return token_file


class Grant(NamedTuple):
    """One successful refresh: which key was refreshed, what replaced it, and when."""

    old_inner_jwt: str
    new_key: IssuedKey
    granted_at: float


@dataclass
class _KeyRecord:
    key: IssuedKey
    scope: Scope
    revoked: bool = False


@dataclass
class _RefreshTokenRecord:
    inner_jwt: str
    used: bool = False


@dataclass
class _Fault:
    status: grpc.StatusCode
    remaining: int
    delay_seconds: float
    message: str


class _Rejection(Exception):
    """A call the rules refuse, carrying the gRPC status to answer with."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MomentoStandIn:
    """Momento's refresh and list-caches calls, with a ledger and fault injection for tests.

    Key expiry follows `clock` (default `time.time`); injected delays use real time.
    Every public method is safe to call from any thread while the server runs.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        endpoint: str = DEFAULT_ENDPOINT,
        clock: Callable[[], float] = time.time,
        max_workers: int = 16,
    ) -> None:
        self._requested_port = port
        self._endpoint = endpoint
        self._clock = clock
        self._max_workers = max_workers
        self._signing_secret = secrets.token_bytes(32)

        self._lock = threading.Lock()
        self._keys: dict[str, _KeyRecord] = {}
        self._refresh_tokens: dict[str, _RefreshTokenRecord] = {}
        self._grants: list[Grant] = []
        self._refresh_calls = 0
        self._verify_calls = 0
        self._faults: dict[Method, deque[_Fault]] = {"refresh": deque(), "verify": deque()}
        self._delays: dict[tuple[Method, Phase], float] = {}

        self._stopping = threading.Event()
        self._server: Any = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> int:
        """Bind 127.0.0.1 and serve; returns the port. Raises `OSError` if the port is taken."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping.clear()
        self._executor = futures.ThreadPoolExecutor(
            max_workers=self._max_workers, thread_name_prefix="momento-standin"
        )
        # NOTE: gRPC enables SO_REUSEPORT by default, which would let a second server share a
        # fixed port silently; a busy port must fail instead.
        server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        # The generated gRPC modules carry no type hints.
        auth_pb2_grpc.add_AuthServicer_to_server(  # type: ignore[no-untyped-call]
            _AuthService(self), server
        )
        controlclient_pb2_grpc.add_ScsControlServicer_to_server(  # type: ignore[no-untyped-call]
            _ControlService(self), server
        )
        try:
            port = server.add_insecure_port(f"127.0.0.1:{self._requested_port}")
        except RuntimeError as error:
            self._executor.shutdown(wait=False)
            raise OSError(f"cannot bind 127.0.0.1:{self._requested_port}") from error
        if port == 0:
            self._executor.shutdown(wait=False)
            raise OSError(f"cannot bind 127.0.0.1:{self._requested_port}")

        server.start()
        self._server, self._port = server, int(port)
        return self._port

    def stop(self) -> None:
        """Stop serving, cutting short any injected delay. Safe to call twice."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.stop(grace=None).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._server, self._executor, self._port = None, None, None

    def __enter__(self) -> MomentoStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the stand-in is not running")
        return self._port

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>`, the target for `grpc.insecure_channel`."""
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The endpoint name written into v1 keys and refresh responses (not resolvable)."""
        return self._endpoint

    # -- minting -----------------------------------------------------------------------------

    def mint_key(
        self,
        lifetime_seconds: int,
        *,
        form: KeyForm = "v1",
        issued_at: float | None = None,
        scope: Scope = "all",
    ) -> IssuedKey:
        """Issue a key as Momento's console would, registered so that the server accepts it.

        `valid_until` is `issued_at + lifetime_seconds` (0 when the lifetime is 0), so a key
        issued in the past can be born already expired. v2 keys and disposable tokens come
        without a refresh token. Raises `ValueError` for an unknown form or scope, a negative
        lifetime, or a disposable token that is not short-lived (1 s to 1 day).
        """
        if form not in get_args(KeyForm):
            raise ValueError(f"unknown key form {form!r}")
        if scope not in get_args(Scope):
            raise ValueError(f"unknown scope {scope!r}")
        if lifetime_seconds < 0:
            raise ValueError("lifetime_seconds must be 0 (never expires) or positive")
        if form == "disposable" and not 0 < lifetime_seconds <= DISPOSABLE_MAX_LIFETIME:
            raise ValueError("a disposable token lives between 1 second and 1 day")

        start = self._clock() if issued_at is None else issued_at
        with self._lock:
            return self._issue_locked(lifetime_seconds, form, int(start), scope)

    def _issue_locked(
        self, lifetime_seconds: int, form: KeyForm, issued_at: int, scope: Scope
    ) -> IssuedKey:
        valid_until = 0 if lifetime_seconds == 0 else issued_at + lifetime_seconds
        claims: dict[str, Any] = {"sub": "standin-user", "iat": issued_at, "jti": uuid.uuid4().hex}
        if valid_until:
            claims["exp"] = valid_until
        if form == "legacy":
            claims["cp"] = f"control.{self._endpoint}"
            claims["c"] = f"cache.{self._endpoint}"
        elif form == "v2":
            claims["t"] = "g"
        inner_jwt = jwt.encode(claims, self._signing_secret, algorithm="HS256")

        stored_key = inner_jwt
        if form in ("v1", "disposable"):
            stored_key = encode_v1_key(self._endpoint, inner_jwt)
        refresh_token = secrets.token_urlsafe(32) if form in ("v1", "legacy") else None

        key = IssuedKey(stored_key, inner_jwt, refresh_token, valid_until, lifetime_seconds, form)
        self._keys[inner_jwt] = _KeyRecord(key, scope)
        if refresh_token is not None:
            self._refresh_tokens[refresh_token] = _RefreshTokenRecord(inner_jwt)
        return key

    # -- ledger ------------------------------------------------------------------------------

    @property
    def grants(self) -> list[Grant]:
        """A snapshot of every successful refresh, oldest first."""
        with self._lock:
            return list(self._grants)

    @property
    def refresh_calls(self) -> int:
        """Refresh attempts received, including refused and faulted ones."""
        with self._lock:
            return self._refresh_calls

    @property
    def verify_calls(self) -> int:
        """ListCaches attempts received, including refused and faulted ones."""
        with self._lock:
            return self._verify_calls

    def is_accepted(self, key: str) -> bool:
        """True if `key` (stored form or inner JWT) was issued here, is live and not revoked."""
        with self._lock:
            record = self._keys.get(inner_jwt_of(key))
            return record is not None and not record.revoked and not self._expired(record.key)

    def revoke(self, key: str) -> None:
        """Refuse `key` (stored form or inner JWT) from now on. Raises `KeyError` if unknown."""
        with self._lock:
            self._keys[inner_jwt_of(key)].revoked = True

    def all_secret_strings(self) -> set[str]:
        """Every stored key, inner JWT and refresh token ever issued: what no log may contain."""
        with self._lock:
            found: set[str] = set()
            for record in self._keys.values():
                found.update((record.key.stored_key, record.key.inner_jwt))
                if record.key.refresh_token is not None:
                    found.add(record.key.refresh_token)
            return found

    # -- faults ------------------------------------------------------------------------------

    def inject_fault(
        self,
        method: Method,
        status: grpc.StatusCode,
        count: int = 1,
        delay_seconds: float = 0.0,
        message: str = "fault injected by the local Momento stand-in",
    ) -> None:
        """Fail the next `count` calls of `method` ("refresh" or "verify") with `status`.

        A faulted call waits `delay_seconds` first and changes no state. Faults queue up in the
        order they were injected.
        """
        _check_method(method)
        if count < 1:
            raise ValueError("count must be at least 1")
        if status == grpc.StatusCode.OK:
            raise ValueError("a fault needs a status other than OK")
        with self._lock:
            self._faults[method].append(_Fault(status, count, delay_seconds, message))

    def set_delay(self, method: Method, seconds: float, *, phase: Phase = "before") -> None:
        """Delay every call of `method` by `seconds` until `clear_faults`.

        With `phase="before"` the delay comes before any work, so a client that gives up has
        changed nothing. With `phase="after"` a refresh is granted first and only its answer is
        late: a client that gives up has lost the new key while its refresh token is spent,
        as when a response is lost on the network.
        """
        _check_method(method)
        if phase not in get_args(Phase):
            raise ValueError(f"unknown phase {phase!r}")
        with self._lock:
            self._delays[(method, phase)] = max(0.0, seconds)

    def clear_faults(self) -> None:
        """Drop queued faults and persistent delays."""
        with self._lock:
            for queue in self._faults.values():
                queue.clear()
            self._delays.clear()

    # -- the two calls -----------------------------------------------------------------------

    def _refresh(self, request: Any, context: Any) -> Any:
        with self._lock:
            self._refresh_calls += 1
        self._pause_before_work("refresh", context)
        self._fail_if_faulted("refresh", context)

        try:
            key = self._grant(request.api_key, request.refresh_token)
        except _Rejection as rejection:
            _abort(context, rejection.status, rejection.message)

        self._pause(context, self._delay("refresh", "after"))
        return auth_pb2._RefreshApiTokenResponse(
            api_key=key.inner_jwt,
            refresh_token=key.refresh_token,
            endpoint=self._endpoint,
            valid_until=key.valid_until,
        )

    def _grant(self, api_key: str, refresh_token: str) -> IssuedKey:
        with self._lock:
            record = self._keys.get(api_key)
            if record is None:
                raise _Rejection(
                    grpc.StatusCode.UNAUTHENTICATED, self._unknown_key_message(api_key)
                )
            if record.revoked:
                raise _Rejection(grpc.StatusCode.UNAUTHENTICATED, "api key revoked")
            if self._expired(record.key):
                raise _Rejection(grpc.StatusCode.UNAUTHENTICATED, "api key expired")

            token = self._refresh_tokens.get(refresh_token)
            if token is None or token.inner_jwt != api_key:
                raise _Rejection(
                    grpc.StatusCode.UNAUTHENTICATED, "refresh token does not belong to this api key"
                )
            if token.used:
                raise _Rejection(grpc.StatusCode.INVALID_ARGUMENT, "refresh token already used")

            now = self._clock()
            new_key = self._issue_locked(record.key.lifetime_seconds, "v1", int(now), record.scope)
            token.used = True
            self._grants.append(Grant(api_key, new_key, now))
            return new_key

    def _list_caches(self, request: Any, context: Any) -> Any:
        with self._lock:
            self._verify_calls += 1
        self._pause_before_work("verify", context)
        self._fail_if_faulted("verify", context)

        presented = dict(context.invocation_metadata()).get("authorization", "")
        with self._lock:
            record = self._keys.get(presented)
            live = record is not None and not record.revoked and not self._expired(record.key)
            scope = record.scope if record is not None else None
        if not live:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, "invalid api key")
        if scope == "data":
            _abort(
                context, grpc.StatusCode.PERMISSION_DENIED, "api key may not use the control plane"
            )

        self._pause(context, self._delay("verify", "after"))
        return controlclient_pb2._ListCachesResponse(
            cache=[controlclient_pb2._Cache(cache_name=LOCAL_CACHE_NAME)]
        )

    def _unknown_key_message(self, api_key: str) -> str:
        if inner_jwt_of(api_key) in self._keys:
            return "invalid api key: send the inner JWT, not the base64 stored form"
        return "invalid api key"

    def _expired(self, key: IssuedKey) -> bool:
        return key.valid_until != 0 and key.valid_until <= self._clock()

    def _delay(self, method: Method, phase: Phase) -> float:
        with self._lock:
            return self._delays.get((method, phase), 0.0)

    def _fail_if_faulted(self, method: Method, context: Any) -> None:
        with self._lock:
            queue = self._faults[method]
            fault = queue[0] if queue else None
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    queue.popleft()
        if fault is None:
            return
        self._pause(context, fault.delay_seconds)
        _abort(context, fault.status, fault.message)

    def _pause(self, context: Any, seconds: float) -> None:
        """Sleep, but wake early when the client gives up or the server stops."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and context.is_active():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, 0.02))

    def _pause_before_work(self, method: Method, context: Any) -> None:
        """The persistent "before" delay; a call abandoned meanwhile is dropped undone."""
        self._pause(context, self._delay(method, "before"))
        if self._stopping.is_set():
            _abort(context, grpc.StatusCode.UNAVAILABLE, "the stand-in is stopping")
        if not context.is_active():
            _abort(context, grpc.StatusCode.CANCELLED, "the client gave up")


class _AuthService(auth_pb2_grpc.AuthServicer):
    def __init__(self, standin: MomentoStandIn) -> None:
        self._standin = standin

    def RefreshApiToken(self, request: Any, context: Any) -> Any:
        return self._standin._refresh(request, context)


class _ControlService(controlclient_pb2_grpc.ScsControlServicer):
    def __init__(self, standin: MomentoStandIn) -> None:
        self._standin = standin

    def ListCaches(self, request: Any, context: Any) -> Any:
        return self._standin._list_caches(request, context)


def encode_v1_key(endpoint: str, inner_jwt: str) -> str:
    """Standard base64 (padded) of compact JSON `{"endpoint", "api_key"}`: a v1 stored key."""
    payload = json.dumps({"endpoint": endpoint, "api_key": inner_jwt}, separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


def inner_jwt_of(key: str) -> str:
    """The JWT inside a v1 stored key; any other string is returned unchanged.

    A string counts as base64 only if decoding and re-encoding gives it back exactly, the
    rule Momento's SDKs use.
    """
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return key
    if base64.b64encode(raw).decode() != key:
        return key
    try:
        wrapper = json.loads(raw)
    except ValueError:
        return key
    inner = wrapper.get("api_key") if isinstance(wrapper, dict) else None
    return inner if isinstance(inner, str) else key


def _abort(context: Any, status: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(status, message)
    raise AssertionError("grpc's abort always raises")


def _check_method(method: str) -> None:
    if method not in get_args(Method):
        raise ValueError(f"unknown method {method!r}: use 'refresh' or 'verify'")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the stand-in until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m localenv.momento_standin")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="endpoint name in v1 keys")
    parser.add_argument(
        "--mint-lifetime",
        type=int,
        metavar="SECONDS",
        help="also mint one v1 key and print it as a momento_token.info.json line",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    with MomentoStandIn(port=args.port, endpoint=args.endpoint) as standin:
        print(f"listening on {standin.address}", flush=True)
        if args.mint_lifetime is not None:
            key = standin.mint_key(args.mint_lifetime)
            print(json.dumps(key.as_token_file()), flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
