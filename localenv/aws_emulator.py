"""moto's server, corrected where this product relies on AWS behaviour that moto lacks.

`AwsEmulator` runs `python -m localenv.aws_emulator --port 0` as a child process, which applies
the corrections below to moto's models, then serves moto's multi-service app on 127.0.0.1 with
a fault-injecting layer in front. Clients are plain boto3 with `endpoint_url`.

Corrections (moto 5.2.5; each restores what AWS documents):

1. PutSecretValue with a ClientRequestToken that already names a version holding a value.
   AWS: versions are immutable and the token makes the call idempotent. The same value
   succeeds, returns that version and changes nothing (no stage moves); a different value
   fails with ResourceExistsException. moto overwrites the value and rewrites the version's
   labels whenever the version carries AWSPENDING, which is exactly the version a rotation is
   writing, so a retried store could strip AWSCURRENT from a promoted version. A token naming
   a version without a value (RotateSecret's placeholder) still fills it in, as on AWS.
2. PutSecretValue and UpdateSecretVersionStage on a secret scheduled for deletion fail with
   InvalidRequestException ("marked for deletion"), as on AWS; moto accepts them.
3. DescribeSecret `VersionIdsToStages` and ListSecrets `SecretVersionsToStages` list only
   versions that hold a staging label, as on AWS; moto also lists unlabelled ones with `[]`.
4. UpdateSecretVersionStage that moves AWSCURRENT also moves what GetSecretValue (and
   BatchGetSecretValue) return by default, as on AWS. moto keeps serving the old version, now
   labelled AWSPREVIOUS, so a promoted key would never reach the applications; and its next
   PutSecretValue would leave two versions labelled AWSCURRENT.

Test routes served in front of moto (JSON bodies):

| route | effect |
| --- | --- |
| `POST /_localenv/faults` | queue a fault, see `FaultSpec` |
| `GET /_localenv/faults` | the faults still queued, with their remaining counts |
| `DELETE /_localenv/faults` | drop every queued fault |
| `GET /_localenv/calls` | requests received per operation: `{"secretsmanager.PutSecretValue": 3}` |
| `DELETE /_localenv/calls` | zero the counts |
| `POST /moto-api/reset` | moto's own reset; it also drops faults and counts |

An operation is named `<service>.<action>`: the service is the SigV4 signing name of the
request (`secretsmanager`, `sqs`, `events`, `monitoring`), the action comes from `X-Amz-Target`
(JSON protocols, SQS included), the `/operation/<name>` path (Smithy RPCv2 CBOR), or the
`Action` form field (query protocol). REST protocols are named by method and path, e.g.
`lambda.GET /2015-03-31/functions/`. Counts include requests answered by a fault.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, TypedDict
from xml.sax.saxutils import escape

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
LISTENING_PREFIX = "listening on "
CONTROL_PREFIX = "/_localenv/"
MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)

# The emulator is on loopback: never let an HTTP(S)_PROXY variable route control calls elsewhere.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


# -- corrections to moto's Secrets Manager --------------------------------------------------


def apply_corrections() -> None:
    """Patch moto's Secrets Manager models in this process. Idempotent.

    Only the emulator's own process calls this: patching moto inside a test process would
    change `mock_aws` for every other test there.
    """
    from moto.secretsmanager import models

    backend_class: Any = models.SecretsManagerBackend
    secret_class: Any = models.FakeSecret
    if getattr(backend_class, "_localenv_corrected", False):
        return

    original_put = backend_class.put_secret_value
    original_update_stage = backend_class.update_secret_version_stage

    def put_secret_value(
        self: Any,
        secret_id: str,
        secret_string: str | None,
        secret_binary: str | None,
        client_request_token: str | None,
        version_stages: list[str],
    ) -> str:
        secret = _writable_secret(self, secret_id)
        if secret is not None and client_request_token:
            self._client_request_token_validator(client_request_token)
            version = secret.versions.get(client_request_token)
            if version is not None and _holds_value(version):
                return _existing_version_or_conflict(
                    secret, version, client_request_token, secret_string, secret_binary
                )
        return str(
            original_put(
                self,
                secret_id=secret_id,
                secret_string=secret_string,
                secret_binary=secret_binary,
                client_request_token=client_request_token,
                version_stages=version_stages,
            )
        )

    def update_secret_version_stage(
        self: Any,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str | None,
        move_to_version_id: str | None,
    ) -> tuple[str, str]:
        secret = _writable_secret(self, secret_id)
        arn, name = original_update_stage(
            self,
            secret_id=secret_id,
            version_stage=version_stage,
            remove_from_version_id=remove_from_version_id,
            move_to_version_id=move_to_version_id,
        )
        if secret is not None and version_stage == "AWSCURRENT" and move_to_version_id:
            secret.set_default_version_id(move_to_version_id)
        return str(arn), str(name)

    def labelled_versions_to_stages(self: Any) -> dict[str, list[str]]:
        return {
            version_id: list(version["version_stages"])
            for version_id, version in self.versions.items()
            if version["version_stages"]
        }

    backend_class.put_secret_value = put_secret_value
    backend_class.update_secret_version_stage = update_secret_version_stage
    secret_class._form_version_ids_to_stages = labelled_versions_to_stages
    backend_class._localenv_corrected = True


def _writable_secret(backend: Any, secret_id: str) -> Any:
    """The secret named `secret_id`, refusing one scheduled for deletion (AWS's rule).

    Returns None when moto should answer itself (unknown secret, replica).
    """
    from moto.secretsmanager.exceptions import InvalidRequestException
    from moto.secretsmanager.models import FakeSecret

    secret = backend.secrets.get(secret_id) if backend._is_valid_identifier(secret_id) else None
    if not isinstance(secret, FakeSecret):
        return None
    if secret.is_deleted():
        raise InvalidRequestException(MARKED_FOR_DELETION)
    return secret


def _holds_value(version: dict[str, Any]) -> bool:
    return "secret_string" in version or "secret_binary" in version


def _existing_version_or_conflict(
    secret: Any,
    version: dict[str, Any],
    token: str,
    secret_string: str | None,
    secret_binary: str | None,
) -> str:
    from moto.secretsmanager.exceptions import ResourceExistsException

    same = (
        version.get("secret_string") == secret_string
        and version.get("secret_binary") == secret_binary
    )
    if not same:
        raise ResourceExistsException(
            f"You can't use ClientRequestToken {token} because that value is already in use "
            f"for a version of secret {secret.arn}."
        )
    return str(secret.to_short_dict(include_version_stages=True, version_id=token))


# -- fault injection and call counting ------------------------------------------------------


class FaultSpec(TypedDict, total=False):
    """The body of `POST /_localenv/faults`; `service`, `action` and `error` are required.

    `action` may be `*` for every action of the service. `status` defaults to 400, `count`
    to 1, `delay_seconds` (before answering) to 0.
    """

    service: str
    action: str
    error: str
    status: int
    count: int
    message: str
    delay_seconds: float


# Operations moto 5.2.5 does not implement that this product calls (the CLI falls back).
UNIMPLEMENTED = frozenset(
    {
        ("sqs", "StartMessageMoveTask"),
        ("sqs", "ListMessageMoveTasks"),
        ("sqs", "CancelMessageMoveTask"),
    }
)


@dataclass
class _QueuedFault:
    service: str
    action: str
    error: str
    status: int
    message: str
    remaining: int
    delay_seconds: float

    def matches(self, service: str, action: str) -> bool:
        return self.service == service and self.action in ("*", action)


class FaultInjectingApp:
    """WSGI layer in front of moto: counts operations and answers queued faults.

    A faulted request never reaches moto, so it changes no state. The error is written the way
    the request's protocol expects (JSON `__type` plus `x-amzn-errortype` header, or query XML),
    so botocore raises `ClientError` with `Error.Code` set to the fault's `error`.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._faults: list[_QueuedFault] = []
        self._calls: Counter[str] = Counter()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                self.clear()
            return self._app(environ, start_response)

        service, action = operation_of(environ)
        with self._lock:
            self._calls[f"{service}.{action}"] += 1
            fault = self._take_fault(service, action)
        if fault is None and (service, action) in UNIMPLEMENTED:
            # moto raises NotImplementedError here, which werkzeug prints as a traceback and
            # answers with an HTML 500. Answer as AWS does for an operation it does not offer.
            fault = _QueuedFault(
                service,
                action,
                "UnsupportedOperation",
                400,
                f"{action} is not available on this emulator",
                1,
                0.0,
            )
        if fault is None:
            return self._app(environ, start_response)

        time.sleep(fault.delay_seconds)
        return _error_response(environ, start_response, fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._calls.clear()

    def _take_fault(self, service: str, action: str) -> _QueuedFault | None:
        for fault in self._faults:
            if fault.matches(service, action):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _control(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        route = (environ.get("REQUEST_METHOD"), str(environ.get("PATH_INFO", "")).rstrip("/"))
        if route == ("POST", "/_localenv/faults"):
            try:
                fault = _parse_fault(_read_body(environ))
            except ValueError as error:
                return _json_response(start_response, "400 Bad Request", {"message": str(error)})
            with self._lock:
                self._faults.append(fault)
            return _json_response(start_response, "201 Created", asdict(fault))

        with self._lock:
            if route == ("GET", "/_localenv/faults"):
                body: Any = [asdict(fault) for fault in self._faults]
            elif route == ("DELETE", "/_localenv/faults"):
                self._faults.clear()
                body = {}
            elif route == ("GET", "/_localenv/calls"):
                body = dict(sorted(self._calls.items()))
            elif route == ("DELETE", "/_localenv/calls"):
                self._calls.clear()
                body = {}
            else:
                return _json_response(start_response, "404 Not Found", {"message": "no route"})
        return _json_response(start_response, "200 OK", body)


def operation_of(environ: Environ) -> tuple[str, str]:
    """(service, action) of an AWS request, as described in the module docstring."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    service = _signing_name(str(environ.get("HTTP_AUTHORIZATION", "")))
    if not service:
        service = target.split(".", 1)[0].lower() if target else "unsigned"

    path = str(environ.get("PATH_INFO", ""))
    if target:
        return service, target.rsplit(".", 1)[-1]
    if "/operation/" in path:
        return service, path.rsplit("/operation/", 1)[1].strip("/")
    action = _form_action(environ)
    if action:
        return service, action
    return service, f"{environ.get('REQUEST_METHOD', 'GET')} {path}"


def _signing_name(authorization: str) -> str:
    # SigV4: "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ..."
    scope = authorization.partition("Credential=")[2].split(",", 1)[0].split("/")
    return scope[3].lower() if len(scope) == 5 else ""


def _form_action(environ: Environ) -> str:
    query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")))
    if "Action" in query:
        return query["Action"][0]
    if not str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        return ""
    body = _read_body(environ)
    return urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]


def _read_body(environ: Environ) -> bytes:
    """Read the request body and put it back, so that moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _parse_fault(raw: bytes) -> _QueuedFault:
    try:
        spec = json.loads(raw or b"{}")
    except ValueError as error:
        raise ValueError(f"the fault is not JSON: {error}") from None
    if not isinstance(spec, dict):
        raise ValueError("the fault must be a JSON object")
    missing = [name for name in ("service", "action", "error") if not spec.get(name)]
    if missing:
        raise ValueError(f"the fault lacks {', '.join(missing)}")

    try:
        fault = _QueuedFault(
            service=str(spec["service"]).lower(),
            action=str(spec["action"]),
            error=str(spec["error"]),
            status=int(spec.get("status", 400)),
            message=str(spec.get("message") or f"{spec['error']} injected by the local emulator"),
            remaining=int(spec.get("count", 1)),
            delay_seconds=float(spec.get("delay_seconds", 0.0)),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"the fault has a malformed field: {error}") from None
    if fault.remaining < 1 or not 400 <= fault.status <= 599 or fault.delay_seconds < 0:
        raise ValueError("count must be >= 1, status 400-599, delay_seconds >= 0")
    return fault


def _error_response(
    environ: Environ, start_response: StartResponse, fault: _QueuedFault
) -> Iterable[bytes]:
    request_id = str(uuid.uuid4())
    status = f"{fault.status} Injected Fault"
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if content_type.startswith("application/x-www-form-urlencoded"):
        sender = "Sender" if fault.status < 500 else "Receiver"
        xml = (
            "<ErrorResponse><Error>"
            f"<Type>{sender}</Type><Code>{escape(fault.error)}</Code>"
            f"<Message>{escape(fault.message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        start_response(status, [*headers, ("Content-Length", str(len(xml)))])
        return [xml]

    body = json.dumps({"__type": fault.error, "message": fault.message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-errortype", fault.error),
            ("x-amzn-RequestId", request_id),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def _json_response(start_response: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


# -- the emulator process --------------------------------------------------------------------


def serve(port: int, *, exit_on_stdin_eof: bool = False) -> None:
    """Apply the corrections and serve moto on 127.0.0.1:`port` until SIGTERM or SIGINT.

    Prints `listening on http://127.0.0.1:<port>` once the socket is bound. With
    `exit_on_stdin_eof`, it also stops when standard input closes, which is how a child
    notices that the parent that started it has died.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    apply_corrections()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
    app = FaultInjectingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    os.environ["MOTO_PORT"] = str(server.server_port)  # moto builds some URLs from it

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if exit_on_stdin_eof:
        threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()

    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    print(f"{LISTENING_PREFIX}http://127.0.0.1:{server.server_port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()


def _wait_for_eof(stop: threading.Event) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader holds its lock
    # and makes the interpreter abort at exit.
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    finally:
        stop.set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localenv.aws_emulator")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes (set by AwsEmulator, to die with its parent)",
    )
    args = parser.parse_args(argv)
    serve(args.port, exit_on_stdin_eof=args.exit_on_stdin_eof)
    return 0


# -- the parent-side handle ------------------------------------------------------------------


class AwsEmulator:
    """Starts, resets, faults and stops the emulator process. Usable as a context manager.

    The child dies with the parent: it exits when its standard input (a pipe from this
    object) closes.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        startup_timeout: float = 60.0,
        stderr: IO[bytes] | int | None = None,
    ) -> None:
        self._port = port
        self._startup_timeout = startup_timeout
        self._stderr = stderr
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoint_url: str | None = None

    def start(self) -> str:
        """Launch the child and return its endpoint URL once it listens.

        Raises `RuntimeError` if the child exits or stays silent past `startup_timeout`.
        """
        if self._process is not None:
            raise RuntimeError("the emulator is already running")
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (package_root, env.get("PYTHONPATH", "")) if part
        )
        command = [sys.executable, "-m", "localenv.aws_emulator", "--port", str(self._port)]
        self._process = subprocess.Popen(
            [*command, "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=package_root,
        )
        try:
            self._endpoint_url = self._await_listening_line(self._process)
        except BaseException:
            self.stop()
            raise
        return self._endpoint_url

    def _await_listening_line(self, process: subprocess.Popen[bytes]) -> str:
        lines: queue.Queue[bytes] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(
            target=_drain, args=(process.stdout, lines), name="aws-emulator-stdout", daemon=True
        ).start()

        deadline = time.monotonic() + self._startup_timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=min(left, 0.2)).decode().strip()
            except queue.Empty:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the AWS emulator exited with {process.returncode} before listening"
                    ) from None
                continue
            if line.startswith(LISTENING_PREFIX):
                return line.removeprefix(LISTENING_PREFIX)
        raise RuntimeError(f"the AWS emulator did not listen within {self._startup_timeout} s")

    def stop(self) -> None:
        """Terminate the child by its pid and wait for it. Safe to call twice."""
        process, self._process, self._endpoint_url = self._process, None, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            process.stdin.close()

    def __enter__(self) -> AwsEmulator:
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
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("the emulator is not running")
        return self._endpoint_url

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the emulator is not running")
        return self._process.pid

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for `boto3.client(service, **kwargs)` aimed at the emulator."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }

    def environ(self) -> dict[str, str]:
        """Environment variables that aim any AWS SDK (or a child process) at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **DUMMY_CREDENTIALS,
        }

    def reset(self) -> None:
        """Empty every emulated service (moto's reset); also drops faults and call counts."""
        self._request("POST", "/moto-api/reset")

    def inject_fault(
        self,
        service: str,
        action: str,
        error: str,
        count: int = 1,
        status: int = 400,
        message: str | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        """Answer the next `count` `<service>.<action>` requests with `error`, unprocessed."""
        spec: FaultSpec = {
            "service": service,
            "action": action,
            "error": error,
            "count": count,
            "status": status,
            "delay_seconds": delay_seconds,
        }
        if message is not None:
            spec["message"] = message
        self._request("POST", "/_localenv/faults", spec)

    def pending_faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/_localenv/faults")
        return result

    def clear_faults(self) -> None:
        self._request("DELETE", "/_localenv/faults")

    def call_counts(self) -> dict[str, int]:
        """Requests received per `<service>.<action>` since the last reset."""
        result: dict[str, int] = self._request("GET", "/_localenv/calls")
        return result

    def clear_call_counts(self) -> None:
        self._request("DELETE", "/_localenv/calls")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with _DIRECT.open(request, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            raise RuntimeError(f"{method} {path} failed with {error.code}: {detail}") from None
        if not raw or not raw.lstrip().startswith((b"{", b"[")):
            return None
        return json.loads(raw)


def _drain(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    # Keep reading after the first line so that the child never blocks on a full pipe.
    for line in stream:
        lines.put(line)


if __name__ == "__main__":
    sys.exit(main())
