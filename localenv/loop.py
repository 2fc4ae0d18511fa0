"""The whole loop on one machine: emulator, stand-in, queues, scanner and rotator processes.

`LocalLoop` wires the real handlers to moto's server and the Momento stand-in exactly as the
stack wires them in AWS: the same environment variables, the same queue settings, the
scanner run as one invocation and the rotator as `max_concurrency` execution environments that
drain the queue while the scanner fills it. Every function's log lines are kept in files under
`workdir/logs`, so a test can read every line of a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3

from infrastructure.config import StackConfig
from localenv.aws_emulator import AwsEmulator
from localenv.momento_standin import MomentoStandIn
from localenv.provision import Queues, provision_queues, queue_depth
from momento_keys.dead_letters import DeadLetterQueue, peek

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DeadLetter:
    secret: str
    reason: str
    detail: str
    attempts: str
    body: str = field(repr=False)


class LocalLoop:
    def __init__(
        self,
        emulator: AwsEmulator,
        standin: MomentoStandIn,
        workdir: Path,
        config: StackConfig | None = None,
        env_overrides: dict[str, str] | None = None,
        visibility_timeout_seconds: int | None = None,
    ) -> None:
        self.emulator = emulator
        self.standin = standin
        self.workdir = workdir
        self.config = config or StackConfig.from_cdk_json(ROOT / "cdk.json")
        self.env_overrides = env_overrides or {}
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.queues: Queues | None = None
        self._workers: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        (workdir / "logs").mkdir(parents=True, exist_ok=True)

    # -- clients and environment -------------------------------------------------------------

    def client(self, service: str) -> Any:
        return boto3.client(service, **self.emulator.client_kwargs())

    def provision(self) -> Queues:
        self.queues = provision_queues(
            self.client("sqs"),
            self.config,
            visibility_timeout_seconds=self.visibility_timeout_seconds,
        )
        return self.queues

    def function_env(self, role: str) -> dict[str, str]:
        queues = self._queues()
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(self.emulator.environ())
        env.update(
            self.config.function_environment(
                role,  # type: ignore[arg-type]
                rotation_queue_url=queues.rotation_url,
                dead_letter_queue_url=queues.dead_letter_url,
            )
        )
        env["ROTATION_QUEUE_URL"] = queues.rotation_url
        if role == "rotator":
            env["MOMENTO_ENDPOINT_OVERRIDE"] = self.standin.address
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        env.update(self.env_overrides)
        return env

    # -- functions ---------------------------------------------------------------------------

    def start_rotators(
        self, count: int | None = None, handler: str = "rotator.handler.lambda_handler"
    ) -> None:
        """Start `count` execution environments (default: the stack's maximum concurrency),
        each a process invoking `handler` with Lambda's delivery rules."""
        queues = self._queues()
        for _ in range(count or self.config.max_concurrency):
            name = f"{handler.split('.')[0]}-{len(self._workers)}.log"
            log = open(self.workdir / "logs" / name, "ab")  # noqa: SIM115 - closed in stop_rotators
            command = [
                sys.executable,
                "-m",
                "localenv.lambda_runtime",
                "--handler",
                handler,
                "--queue-url",
                queues.rotation_url,
                "--queue-arn",
                queues.rotation_arn,
                "--batch-size",
                str(self.config.batch_size),
                "--timeout",
                str(self.config.rotator_timeout_seconds),
            ]
            process = subprocess.Popen(
                command,
                env=self.function_env("rotator"),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self._workers.append((process, log))

    def stop_rotators(self) -> None:
        """SIGTERM each worker this loop started (by pid); each finishes its batch first."""
        for process, _ in self._workers:
            if process.poll() is None:
                process.terminate()
        for process, log in self._workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        self._workers.clear()

    def run_scanner(self) -> dict[str, Any]:
        result_file = self.workdir / f"scan-{time.time_ns()}.json"
        with open(self.workdir / "logs" / "scanner.log", "ab") as log:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "localenv.invoke",
                    "scanner.handler.lambda_handler",
                    "--result",
                    str(result_file),
                ],
                env=self.function_env("scanner"),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=900,
            )
        result: dict[str, Any] = json.loads(result_file.read_text())
        result_file.unlink()
        return result

    def wait_until_drained(self, timeout: float = 300.0, settle: float = 1.5) -> bool:
        """True once the rotation queue holds nothing, visible or in flight, for `settle` s."""
        sqs, url = self.client("sqs"), self._queues().rotation_url
        deadline = time.monotonic() + timeout
        empty_since: float | None = None
        while time.monotonic() < deadline:
            visible, in_flight = queue_depth(sqs, url)
            if visible == 0 and in_flight == 0:
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since >= settle:
                    return True
            else:
                empty_since = None
            time.sleep(0.3)
        return False

    def dead_letters(self) -> list[DeadLetter]:
        """Every message in the DLQ, read as `momento-keys dlq list` reads it: none consumed."""
        queue = DeadLetterQueue(self.client("sqs"), self._queues().dead_letter_url)
        return [
            DeadLetter(
                letter.secret_arn or "(no secret)",
                letter.reason,
                letter.detail,
                letter.attempts,
                letter.body,
            )
            for letter in peek(queue)
        ]

    def log_text(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted((self.workdir / "logs").glob("*.log"))
        )

    def queues_or_fail(self) -> Queues:
        return self._queues()

    def _queues(self) -> Queues:
        if self.queues is None:
            raise RuntimeError("provision() first")
        return self.queues
