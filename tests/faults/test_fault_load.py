"""Many secrets due at once, through the whole local loop: all rotate, none lost, none twice.

The scanner runs while the stack's number of rotator processes drain the queue, as the event
source mapping would. The default size runs with every test run; the full fleet runs with
`make load` (`LOAD_SECRETS=10000 pytest -m load`). Figures are printed, never asserted.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from faults_support import CURRENT, World, check_invariants

from bench.load import drain_with
from keyrotation import secrets
from localenv.aws_emulator import AwsEmulator
from localenv.loop import LocalLoop
from localenv.momento_standin import MomentoStandIn

DEFAULT_SECRETS = 500
FULL_SECRETS = int(os.environ.get("LOAD_SECRETS", "10000"))
# A slow rotation must not be delivered twice because the queue gave up on it.
LOAD_VISIBILITY_SECONDS = 120


def _rotates_each_secret_exactly_once(
    emulator: AwsEmulator, standin: MomentoStandIn, workdir: Path, count: int, timeout: float
) -> None:
    loop = LocalLoop(
        emulator,
        standin,
        workdir,
        env_overrides={"BACKOFF_BASE_SECONDS": "1"},
        visibility_timeout_seconds=LOAD_VISIBILITY_SECONDS,
    )
    world = World(emulator, standin, queues=loop.provision())
    try:
        # GIVEN `count` opted-in secrets whose keys are all due
        seeded = world.opted_in_many("load/secret", count)
        concurrency = loop.config.max_concurrency

        # WHEN the scanner enqueues them while the stack's rotators drain the queue
        drain = drain_with(loop, count, lambda: loop.start_rotators(concurrency), timeout)
        print(
            f"\nload: {count} secrets, {concurrency} rotators: drained in "
            f"{drain.elapsed_seconds:.1f} s ({count / drain.elapsed_seconds:.1f} rotations/s; "
            f"scan {drain.scan_seconds:.1f} s)"
        )

        # THEN the queue drained, and Momento granted exactly one refresh per secret
        assert drain.drained, f"the queue did not drain in {timeout} s"
        grants = world.grants
        assert len(grants) == count
        assert len(Counter(grant.old_inner_jwt for grant in grants)) == count
        # AND each secret holds exactly one new version: the rotation's own, current
        world.texts.append(loop.log_text())
        views = check_invariants(world)
        for secret in seeded:
            view, baseline = views[secret.name], world.baselines[secret.name]
            assert view is not None and baseline.current_id is not None
            assert view.versions_with(CURRENT) == [
                secrets.rotation_token(secret.arn, baseline.current_id)
            ], f"{secret.name} was not rotated exactly once"
            assert len(view.stages) == 2
        # AND nothing was dead-lettered
        assert world.dead_letter_count() == 0
    finally:
        loop.stop_rotators()
        world.close()


@pytest.mark.timeout(600)
def test_loop_rotates_every_due_secret_exactly_once_under_load(
    emulator: AwsEmulator, standin: MomentoStandIn, tmp_path: Path
) -> None:
    _rotates_each_secret_exactly_once(emulator, standin, tmp_path, DEFAULT_SECRETS, 540)


@pytest.mark.load
@pytest.mark.timeout(6 * 3600)
def test_loop_rotates_the_full_fleet_exactly_once(
    emulator: AwsEmulator, standin: MomentoStandIn, tmp_path: Path
) -> None:
    _rotates_each_secret_exactly_once(emulator, standin, tmp_path, FULL_SECRETS, 6 * 3600 - 300)
