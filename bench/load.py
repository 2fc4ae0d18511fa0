"""Load figures for the local loop: N due secrets, scanned and rotated while the queue drains.

    .venv/bin/python bench/load.py --secrets 2000 [--concurrency 5] [--no-baseline]

Seeds N opted-in secrets whose keys are due (with a thread pool: moto takes each secret in
turn), then measures two drains of the same N requests in the same run:

- baseline: rotator processes whose handler does nothing, so the figure is what the emulated
  queue, the scanner and the Lambda-like delivery cost by themselves;
- rotation: the real rotator handler at the stack's concurrency, against the Momento stand-in.

Each drain is timed from the scanner's start to the moment the queue first held nothing,
visible or in flight. The script prints figures and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from keyrotation import secrets  # noqa: E402
from localenv.aws_emulator import AwsEmulator  # noqa: E402
from localenv.loop import LocalLoop  # noqa: E402
from localenv.momento_standin import IssuedKey, MomentoStandIn  # noqa: E402
from localenv.provision import queue_depth  # noqa: E402

DAY = 86_400
LIFETIME = 30 * DAY
TAG = "momento-token"
SEED_THREADS = 8
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class SeededSecret:
    name: str
    arn: str
    version_id: str
    key: IssuedKey


@dataclass(frozen=True)
class Drain:
    """One drain of the rotation queue, from the scanner's start until the queue was empty."""

    messages: int
    scan_seconds: float
    elapsed_seconds: float
    drained: bool

    @property
    def per_second(self) -> float:
        return self.messages / self.elapsed_seconds if self.elapsed_seconds else 0.0


@dataclass(frozen=True)
class Outcome:
    """What the rotation drain left behind, counted from the emulator and the stand-in."""

    rotated: int  # secrets whose AWSCURRENT is the rotation's own version of the seeded one
    new_versions: int  # labelled versions beyond the seeded one, over all secrets
    grants: int
    refreshed_twice: int  # secrets whose key Momento refreshed more than once
    dead_letters: int


def noop_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The baseline's handler: every record succeeds without any work."""
    return {"batchItemFailures": []}


def seed_due_secrets(
    secrets_client: Any, standin: MomentoStandIn, count: int, prefix: str = "load"
) -> tuple[list[SeededSecret], float]:
    """`count` opted-in secrets holding v1 keys with 5 of their 30 days left; and the seconds
    seeding took."""
    issued_at = time.time() - 25 * DAY
    keys = [standin.mint_key(LIFETIME, issued_at=issued_at) for _ in range(count)]

    def create(index: int) -> SeededSecret:
        name = f"{prefix}/secret-{index:05d}"
        response = secrets_client.create_secret(
            Name=name,
            SecretString=json.dumps(keys[index].as_token_file()),
            Tags=[{"Key": TAG, "Value": "load"}],
        )
        return SeededSecret(name, response["ARN"], response["VersionId"], keys[index])

    started = time.monotonic()
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        seeded = list(pool.map(create, range(count)))
    return seeded, time.monotonic() - started


def drain_with(
    loop: LocalLoop, messages: int, start_workers: Callable[[], None], timeout: float
) -> Drain:
    """Start the consumers, run the scanner while they consume, and time the drain."""
    start_workers()
    try:
        started = time.monotonic()
        loop.run_scanner()
        scanned = time.monotonic() - started
        emptied = wait_until_empty(loop, started + timeout)
    finally:
        loop.stop_rotators()
    elapsed = (emptied or time.monotonic()) - started
    return Drain(messages, scanned, elapsed, emptied is not None)


def outcome(loop: LocalLoop, seeded: list[SeededSecret], grants_before: int) -> Outcome:
    """Count what the rotation left, from one paginated listing (no values read)."""
    client = loop.client("secretsmanager")
    stages: dict[str, dict[str, list[str]]] = {}
    for page in client.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "tag-key", "Values": [TAG]}], PaginationConfig={"PageSize": 100}
    ):
        for entry in page["SecretList"]:
            stages[entry["ARN"]] = entry.get("SecretVersionsToStages") or {}

    rotated = new_versions = 0
    for secret in seeded:
        versions = stages.get(secret.arn, {})
        own = secrets.rotation_token(secret.arn, secret.version_id)
        if "AWSCURRENT" in versions.get(own, []):
            rotated += 1
        new_versions += sum(1 for version, labels in versions.items() if labels) - 1

    grants = loop.standin.grants[grants_before:]
    refreshed = Counter(grant.old_inner_jwt for grant in grants)
    visible, in_flight = queue_depth(loop.client("sqs"), _dead_letter_url(loop))
    return Outcome(
        rotated=rotated,
        new_versions=new_versions,
        grants=len(grants),
        refreshed_twice=sum(1 for count in refreshed.values() if count > 1),
        dead_letters=visible + in_flight,
    )


def _dead_letter_url(loop: LocalLoop) -> str:
    assert loop.queues is not None
    return loop.queues.dead_letter_url


def wait_until_empty(loop: LocalLoop, deadline: float, settle: float = 1.0) -> float | None:
    """The monotonic time the queue first held nothing, once it stayed so for `settle` s.

    Polled once a second: moto counts a queue's messages by scanning all of them, so a
    tighter poll would take the emulator's time from the rotators being measured.
    """
    sqs = loop.client("sqs")
    assert loop.queues is not None
    empty_since: float | None = None
    while time.monotonic() < deadline:
        if queue_depth(sqs, loop.queues.rotation_url) == (0, 0):
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= settle:
                return empty_since
        else:
            empty_since = None
        time.sleep(POLL_SECONDS)
    return None


def report(
    count: int,
    concurrency: int,
    seed_seconds: float,
    rotation: Drain,
    result: Outcome,
    baseline: Drain | None,
) -> str:
    lines = [
        f"secrets         {count}",
        f"concurrency     {concurrency} rotator processes",
        f"seeding         {seed_seconds:.1f} s ({count / seed_seconds:.0f} secrets/s)",
        f"scan            {rotation.scan_seconds:.1f} s (rotators consuming meanwhile)",
        f"elapsed         {rotation.elapsed_seconds:.1f} s"
        + ("" if rotation.drained else " (did NOT drain)"),
        f"rotations/s     {result.rotated / rotation.elapsed_seconds:.1f}",
        f"rotated         {result.rotated}",
        f"new versions    {result.new_versions}",
        f"grants          {result.grants} ({result.refreshed_twice} keys refreshed twice)",
        f"DLQ             {result.dead_letters}",
    ]
    if baseline is not None:
        lines.append(
            f"baseline        no-op handler, same {baseline.messages} requests: "
            f"{baseline.elapsed_seconds:.1f} s ({baseline.per_second:.1f} messages/s)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, help="rotator processes (default: stack's)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-op drain")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="momento-load-"))
    with AwsEmulator() as emulator, MomentoStandIn(max_workers=32) as standin:
        loop = LocalLoop(emulator, standin, workdir, env_overrides={"BACKOFF_BASE_SECONDS": "1"})
        loop.provision()
        concurrency = args.concurrency or loop.config.max_concurrency
        client = loop.client("secretsmanager")
        seeded, seed_seconds = seed_due_secrets(client, standin, args.secrets)
        print(f"seeded {len(seeded)} secrets in {seed_seconds:.1f} s", flush=True)

        baseline = None
        if not args.no_baseline:
            baseline = drain_with(
                loop,
                len(seeded),
                lambda: loop.start_rotators(concurrency, handler="bench.load.noop_handler"),
                args.timeout,
            )
            print(f"baseline drained in {baseline.elapsed_seconds:.1f} s", flush=True)

        grants_before = len(standin.grants)
        rotation = drain_with(
            loop, len(seeded), lambda: loop.start_rotators(concurrency), args.timeout
        )
        result = outcome(loop, seeded, grants_before)
        print(report(len(seeded), concurrency, seed_seconds, rotation, result, baseline))
        print(f"logs: {workdir / 'logs'}")
    return 0 if rotation.drained and result.rotated == len(seeded) else 1


if __name__ == "__main__":
    sys.exit(main())
