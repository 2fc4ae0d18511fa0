"""The same rotation run twice at once: one new version, one refresh, no failure reported.

FIFO message groups keep two queue deliveries of one secret apart, but a direct "rotate now"
invocation, a delivery that outlives its visibility timeout, or an operator's command line can
still run beside a queued rotation. Both derive the same version id from the version they
start from, and the refresh token is single-use, so exactly one of them may win.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from faults_support import CURRENT, World, check_invariants, wait_for

from keyrotation.messages import RotationRequest
from keyrotation.rotation import Outcome, RotationResult
from localenv.lambda_runtime import LambdaContext

pytestmark = pytest.mark.timeout(60)

FINISHED = {Outcome.ROTATED.value, Outcome.RESUMED.value}
STOOD_DOWN = {Outcome.SUPERSEDED.value, Outcome.NOT_DUE.value}


def _new_versions(world: World, name: str) -> list[str]:
    view = world.view(name)
    assert view is not None
    return [version for version in view.stages if version != world.baselines[name].current_id]


def _outcomes(world: World) -> list[str]:
    return [entry["outcome"] for entry in world.logs.with_message("rotation finished")]


def holds_at(step: str, reached: threading.Event, until: Callable[[], bool]) -> Any:
    """A step hook that stops at `step` until `until()` holds: a slow or paused process."""

    def hook(at: str) -> None:
        if at == step:
            reached.set()
            wait_for(until, 15, f"the sibling to act while this rotation waits at {step}")

    return hook


def test_rotator_rotates_once_when_the_queue_holds_the_same_work_twice(world: World) -> None:
    # GIVEN a due secret queued twice (a scan's request and an operator's replay of it)
    secret = world.opted_in("app/twice")
    view = world.baselines[secret.name]
    for reason in ("inspect", "replay"):
        world.enqueue(RotationRequest(secret.arn, reason, current_version_id=view.current_id))

    # WHEN two execution environments poll the queue at the same time until it drains
    pipelines = [world.pipeline(), world.pipeline()]
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(world.drain, pipeline.handler) for pipeline in pipelines]
        for run in runs:
            run.result()

    # THEN one refresh, one new version, and the second request found nothing to do
    assert len(world.grants) == 1
    assert len(_new_versions(world, secret.name)) == 1
    assert sorted(_outcomes(world)) == ["not-due", "rotated"]
    assert world.dead_letter_count() == 0
    check_invariants(world)


def test_rotator_rotates_once_when_two_rotations_of_each_secret_start_together(
    world: World,
) -> None:
    # GIVEN several due secrets, some carrying an AWSPENDING label another tool left behind
    secrets = [world.opted_in(f"app/together-{i}") for i in range(6)]
    for secret in secrets[::2]:
        world.sm.put_secret_value(
            SecretId=secret.arn,
            SecretString='{"note": "another tool"}',
            VersionStages=["AWSPENDING"],
        )
        world.rebaseline(secret.name)

    # WHEN two rotators are called directly for each secret, released at the same instant
    pipelines = [world.pipeline(), world.pipeline()]
    results: dict[str, list[RotationResult | BaseException]] = {s.name: [] for s in secrets}
    for secret in secrets:

        def rotate(index: int, start: threading.Barrier, arn: str) -> RotationResult:
            start.wait()
            return pipelines[index].rotator.rotate(RotationRequest(arn, "due"))

        start = threading.Barrier(2)

        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(rotate, index, start, secret.arn) for index in (0, 1)]
            for run in runs:
                try:
                    results[secret.name].append(run.result())
                except Exception as error:  # every failure is reported below
                    results[secret.name].append(error)

    # THEN each secret has exactly one new current version, from exactly one refresh
    assert len(world.grants) == len(secrets)
    for secret in secrets:
        outcomes = results[secret.name]
        failures = [repr(o) for o in outcomes if not isinstance(o, RotationResult)]
        assert failures == [], f"{secret.name}: a rotation failed: {failures}"
        kinds = sorted(o.outcome.value for o in outcomes if isinstance(o, RotationResult))
        # AND one of the two did the work; the other stood down or finished the same version
        assert kinds[0] in FINISHED | STOOD_DOWN and kinds[1] in FINISHED | STOOD_DOWN
        assert any(kind in FINISHED for kind in kinds), f"{secret.name}: {kinds}"
        view = world.view(secret.name)
        assert view is not None
        (new,) = view.versions_with(CURRENT)
        assert new != world.baselines[secret.name].current_id
    check_invariants(world)


@pytest.mark.parametrize("loser", ["direct", "queued"])
def test_rotator_stands_down_when_a_sibling_won_the_refresh_and_is_still_writing(
    world: World, real_handler: Callable[..., Any], loser: str
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/race-refresh")
    world.scan()
    # AND a winner that has Momento's grant but writes slowly (paused until the loser's
    # refresh has been refused, and a moment longer)
    calls = world.standin.refresh_calls
    reached = threading.Event()

    def loser_refused() -> bool:
        if world.standin.refresh_calls < calls + 2:
            return False
        time.sleep(0.3)
        return True

    winner = world.pipeline(on_step=holds_at("after-refresh", reached, loser_refused))

    # WHEN the loser runs while the winner is between its grant and its write
    with ThreadPoolExecutor(1) as pool:
        if loser == "direct":
            winning = pool.submit(world.deliver, winner.handler)
            assert reached.wait(10)
            answer = real_handler()({"SecretId": secret.name}, LambdaContext())
        else:
            winning = pool.submit(winner.rotate_now, secret.name)
            assert reached.wait(10)
            world.drain(real_handler())
            answer = None
        winning.result()

    # THEN the key was rotated once, and the loser stood down without reporting a failure
    assert len(world.grants) == 1
    assert len(_new_versions(world, secret.name)) == 1
    if answer is not None:
        assert answer["outcome"] in STOOD_DOWN
    assert sorted(_outcomes(world)) == ["rotated", "superseded"]
    assert world.dead_letter_count() == 0
    check_invariants(world)


@pytest.mark.parametrize("held", ["queued", "direct"])
def test_rotator_finishes_cleanly_when_a_sibling_completed_its_stored_rotation(
    world: World, real_handler: Callable[..., Any], held: str
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/race-resume")
    world.scan()
    # AND a rotation that stored its key and then paused until a sibling had finished
    sibling_done = threading.Event()
    reached = threading.Event()
    slow = world.pipeline(on_step=holds_at("after-store", reached, sibling_done.is_set))

    # WHEN the sibling finds the stored version, finishes it, and the paused rotation resumes
    with ThreadPoolExecutor(1) as pool:
        if held == "queued":
            paused = pool.submit(world.deliver, slow.handler)
            assert reached.wait(10)
            answer = real_handler()({"SecretId": secret.name}, LambdaContext())
        else:
            paused = pool.submit(slow.rotate_now, secret.name)
            assert reached.wait(10)
            world.drain(real_handler())
            answer = None
        sibling_done.set()
        paused.result()
        world.drain(real_handler())

    # THEN one refresh, one new version, and neither reported a failure
    assert len(world.grants) == 1
    assert len(_new_versions(world, secret.name)) == 1
    if answer is not None:
        assert answer["outcome"] in FINISHED
    assert set(_outcomes(world)) <= FINISHED | STOOD_DOWN
    assert world.dead_letter_count() == 0
    view = world.view(secret.name)
    assert view is not None and "momento-rotation:failure" not in view.tags
    check_invariants(world)
