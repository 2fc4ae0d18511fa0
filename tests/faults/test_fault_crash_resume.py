"""An execution environment dies at each step boundary; the next delivery finishes the work.

The process dies by a BaseException raised from the rotator's step hook, so nothing in the
product or in Powertools can handle it: the message stays in flight and reappears after the
queue's visibility timeout, as after a killed process or a Lambda timeout.
"""

from __future__ import annotations

import time

import grpc
import pytest
from faults_support import CURRENT, ProcessDied, World, check_invariants

from keyrotation import rotation
from keyrotation.state_tags import EXPIRY_TAG, FAILURE_TAG, LAST_ROTATED_TAG, parse_expiry

pytestmark = pytest.mark.timeout(60)

# Every boundary after Momento's grant has been written somewhere a retry can find it.
RESUMABLE_STEPS = [step for step in rotation.STEPS if step != "after-refresh"]


def dies_at(step: str) -> rotation.Callable[[str], None]:
    def hook(reached: str) -> None:
        if reached == step:
            raise ProcessDied(step)

    return hook


@pytest.mark.parametrize("step", RESUMABLE_STEPS)
def test_rotator_finishes_a_rotation_cut_short_after_the_write_with_one_refresh(
    world: World, step: str
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/crash")
    world.scan()
    started = time.time()

    # WHEN an execution environment takes the message and dies at the step boundary
    with pytest.raises(ProcessDied):
        world.deliver(world.pipeline(on_step=dies_at(step)).handler)
    # AND a fresh environment takes the message once it reappears
    world.drain(world.pipeline().handler)

    # THEN the key was refreshed exactly once, and that key is the one now current
    (grant,) = world.grants
    view = world.view(secret.name)
    assert view is not None
    assert world.current_document(secret.name)["apiKey"] == grant.new_key.stored_key
    # AND exactly one new version exists, current, with the old one kept as AWSPREVIOUS
    baseline = world.baselines[secret.name]
    assert len(view.stages) == 2
    assert view.stages[baseline.current_id or ""] == ("AWSPREVIOUS",)
    assert view.versions_with(CURRENT) == [view.current_id]
    # AND the state tags describe the new key and when it was rotated
    expiry = parse_expiry(view.tags.get(EXPIRY_TAG))
    assert expiry is not None and expiry.version_id == view.current_id
    assert expiry.valid_until == grant.new_key.valid_until
    assert LAST_ROTATED_TAG in view.tags
    rotated_at = time.mktime(time.strptime(view.tags[LAST_ROTATED_TAG], "%Y-%m-%dT%H:%M:%SZ"))
    assert rotated_at - time.timezone >= int(started) - 1
    assert FAILURE_TAG not in view.tags
    # AND nothing reached the DLQ
    assert world.dead_letter_count() == 0
    check_invariants(world)


@pytest.mark.usefixtures("quick_sibling_looks")
@pytest.mark.parametrize("how", ["process-dies-after-grant", "answer-lost-after-grant"])
def test_rotator_dead_letters_a_rotation_whose_granted_key_was_lost_before_the_write(
    world: World, how: str
) -> None:
    # NOTE: the one boundary no design makes exactly-once. Momento has granted a new key and
    # spent the old refresh token, but the new key exists only in the memory of a process that
    # died (or in an answer that never arrived). The documented behaviour: the next attempt's
    # refresh is refused, the secret is dead-lettered as refresh-rejected, and the stored
    # secret, whose old key is still valid until its own expiry, is left exactly as it was.

    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/lost-grant")
    world.scan()

    # WHEN the first attempt's granted key is lost before it is written
    if how == "process-dies-after-grant":
        with pytest.raises(ProcessDied):
            world.deliver(world.pipeline(on_step=dies_at("after-refresh")).handler)
    else:
        world.standin.set_delay("refresh", 1.5, phase="after")
        world.deliver(world.pipeline(MOMENTO_TIMEOUT_SECONDS="0.5").handler)
        world.standin.clear_faults()
    # AND a fresh environment takes the message when it reappears
    world.drain(world.pipeline().handler)

    # THEN exactly one refresh was granted, and it never reached the secret
    assert len(world.grants) == 1
    view, baseline = world.view(secret.name), world.baselines[secret.name]
    assert view is not None
    assert (view.current_id, view.current_value) == (baseline.current_id, baseline.current_value)
    assert view.stages == baseline.stages
    # AND the old key still works until its own expiry
    assert world.standin.is_accepted(secret.key.stored_key)  # type: ignore[union-attr]
    # AND the secret is in the DLQ as refresh-rejected, for a person to store a new key
    (letter,) = world.dead_letters()
    assert (letter.reason, letter.secret_arn) == ("refresh-rejected", secret.arn)
    assert world.refresh_calls == 2
    world.rebaseline(secret.name)  # the failure tag is the product's own, expected change
    check_invariants(world, lost_grants=1)


def test_rotator_retries_a_refresh_that_failed_before_momento_granted_anything(
    world: World,
) -> None:
    # GIVEN a due secret, and a refresh that times out before Momento does any work
    secret = world.opted_in("app/slow-refresh")
    world.scan()
    world.standin.set_delay("refresh", 1.5, phase="before")

    # WHEN the first attempt gives up at its deadline and a later one finds Momento healthy
    world.deliver(world.pipeline(MOMENTO_TIMEOUT_SECONDS="0.5").handler)
    world.standin.clear_faults()
    world.drain(world.pipeline().handler)

    # THEN the abandoned call changed nothing, and the retry rotated the key once
    (grant,) = world.grants
    assert world.current_document(secret.name)["apiKey"] == grant.new_key.stored_key
    assert world.dead_letter_count() == 0
    check_invariants(world)


def test_rotator_leaves_the_secret_alone_when_momento_refuses_the_new_key(world: World) -> None:
    # GIVEN a due secret whose refreshed key Momento refuses to authenticate
    secret = world.opted_in("app/unverifiable")
    world.scan()
    world.standin.inject_fault("verify", grpc.StatusCode.UNAUTHENTICATED, count=5)

    # WHEN the rotator handles it
    world.drain(world.pipeline().handler)

    # THEN AWSCURRENT still holds the old key, no AWSPENDING is left behind, and the DLQ says why
    view, baseline = world.view(secret.name), world.baselines[secret.name]
    assert view is not None
    assert (view.current_id, view.current_value) == (baseline.current_id, baseline.current_value)
    assert view.versions_with("AWSPENDING") == []
    (letter,) = world.dead_letters()
    assert letter.reason == "verification-failed"
    world.rebaseline(secret.name)
    # The refused key was stored, then unlabelled: superseded by the old, still valid key.
    check_invariants(world)
