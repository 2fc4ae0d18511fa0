"""No key, refresh token or secret value leaves Secrets Manager, whatever becomes of a secret.

The demo fleet holds every kind of secret (due, fresh, never expiring, broken in each way,
bystanders), so one run through the whole loop produces every kind of log line, metric,
error, queue message and state tag the functions write.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from faults_support import Seeded, World, check_invariants, leaked, peek, secret_material

from bench.load import wait_until_empty
from localenv.aws_emulator import AwsEmulator
from localenv.fleet import build_fleet, seed
from localenv.loop import LocalLoop
from localenv.momento_standin import MomentoStandIn

pytestmark = pytest.mark.timeout(180)


def test_loop_keeps_secret_material_out_of_logs_metrics_errors_messages_and_tags(
    emulator: AwsEmulator, standin: MomentoStandIn, tmp_path: Path
) -> None:
    loop = LocalLoop(emulator, standin, tmp_path, visibility_timeout_seconds=30)
    world = World(emulator, standin, queues=loop.provision())
    try:
        # GIVEN the demo fleet, seeded
        fleet = build_fleet(standin, time.time(), loop.config.tag_key)
        seed(world.sm, fleet)
        for secret in fleet:
            _registered(world, secret.name, secret.value)

        # WHEN the scanner runs, its messages are read where they wait, and the rotators drain
        # the queue
        scan_result = loop.run_scanner()
        queued = peek(world.sqs, world.queues.rotation_url)
        loop.start_rotators()
        assert wait_until_empty(loop, time.monotonic() + 120) is not None
        loop.stop_rotators()
        letters = world.dead_letters()
        logs = loop.log_text()

        # THEN the capture holds what it must: every queued request, the metrics, the DLQ
        assert len(queued) == scan_result["enqueued"] > 0
        assert '"RotationSucceeded"' in logs and '"RotationDeadLettered"' in logs
        assert len(letters) == sum(1 for s in fleet if s.expect.startswith("dead-lettered"))
        # AND no secret string appears in any of it
        values = [secret.value for secret in fleet if secret.value]
        material = secret_material(standin, values)
        texts = [("a function log line", logs), ("the scan's result", json.dumps(scan_result))]
        texts += [("a rotation request", message["Body"]) for message in queued]
        texts += [("a DLQ message", letter.body) for letter in letters]
        texts += [("a DLQ attribute", json.dumps(letter.attributes)) for letter in letters]
        assert leaked(texts, material) == {}
        # AND no metric is dimensioned by a secret
        assert _metric_dimensions(logs) == {"service"}
        # AND the invariants hold for the whole fleet, state tags included
        check_invariants(world)
    finally:
        loop.stop_rotators()
        world.close()


def _registered(world: World, name: str, value: str | None) -> Seeded:
    """Register a secret seeded by the fleet, so the invariants judge it from this state."""
    arn = world.sm.describe_secret(SecretId=name)["ARN"]
    world.seeded[name] = Seeded(name, arn, value, None)
    world.rebaseline(name)
    return world.seeded[name]


def _metric_dimensions(logs: str) -> set[str]:
    dimensions: set[str] = set()
    for line in logs.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                dimensions.update(name for group in directive["Dimensions"] for name in group)
    return dimensions
