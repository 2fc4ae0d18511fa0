"""Someone changes the secret between the scan and the rotation: skipped, nothing overwritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from faults_support import World, check_invariants

from keyrotation.rotation import Outcome

pytestmark = pytest.mark.timeout(60)

WRITES = (
    "secretsmanager.PutSecretValue",
    "secretsmanager.UpdateSecretVersionStage",
    "secretsmanager.TagResource",
    "secretsmanager.UntagResource",
)


def _delete_for_good(world: World, arn: str) -> None:
    world.sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def _schedule_deletion(world: World, arn: str) -> None:
    world.sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)


def _untag(world: World, arn: str) -> None:
    world.sm.untag_resource(SecretId=arn, TagKeys=["momento-token"])


CHANGES = {
    "deleted": (_delete_for_good, "the secret does not exist"),
    "scheduled-for-deletion": (_schedule_deletion, "the secret is scheduled for deletion"),
    "untagged": (_untag, "the secret does not carry the tag momento-token"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_rotator_skips_a_secret_that_left_its_care_after_the_scan(
    world: World, real_handler: Callable[..., Any], change: str
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in(f"app/{change}")
    assert world.scan()["enqueued"] == 1
    # AND then deleted, scheduled for deletion or untagged by its owner
    act, detail = CHANGES[change]
    act(world, secret.arn)
    world.rebaseline(secret.name)
    world.emulator.clear_call_counts()

    # WHEN the rotator takes the queued request
    world.drain(real_handler())

    # THEN it skipped the secret with a log line saying why, and refreshed nothing
    (finished,) = world.logs.with_message("rotation finished")
    assert (finished["outcome"], finished["detail"]) == (Outcome.SKIPPED.value, detail)
    assert world.grants == [] and world.refresh_calls == 0
    # AND wrote nothing to the secret, and reported no failure
    calls = world.call_counts()
    assert [call for call in WRITES if calls.get(call)] == []
    assert world.dead_letter_count() == 0
    check_invariants(world)


def test_rotator_keeps_a_value_someone_stored_after_the_scan(
    world: World, real_handler: Callable[..., Any]
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/replaced")
    world.scan()
    # AND its owner then stored a freshly downloaded key as the current value
    fresh = world.mint(age_days=0)
    replacement = json.dumps(fresh.as_token_file())
    world.sm.put_secret_value(SecretId=secret.arn, SecretString=replacement)
    world.rebaseline(secret.name)

    # WHEN the rotator takes the queued request
    world.drain(real_handler())

    # THEN the owner's value is still the current one, and nothing was refreshed
    view = world.view(secret.name)
    assert view is not None
    assert (view.current_id, view.current_value) == (
        world.baselines[secret.name].current_id,
        replacement,
    )
    assert world.grants == []
    (finished,) = world.logs.with_message("rotation finished")
    assert finished["outcome"] == Outcome.NOT_DUE.value
    assert world.dead_letter_count() == 0
    check_invariants(world)


def test_rotator_yields_to_a_value_someone_stored_while_it_was_rotating(world: World) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/replaced-midway")
    world.scan()
    # AND its owner storing a freshly downloaded key while the rotator verifies its new one
    replacement = json.dumps(world.mint(age_days=0).as_token_file())

    def owner_replaces(step: str) -> None:
        if step == "after-verify":
            world.sm.put_secret_value(SecretId=secret.arn, SecretString=replacement)

    # WHEN the rotator finishes its work
    world.drain(world.pipeline(on_step=owner_replaces).handler)

    # THEN the owner's value stays current: the rotator's promotion lost the compare-and-swap
    assert world.current_document(secret.name) == json.loads(replacement)
    (finished,) = world.logs.with_message("rotation finished")
    assert finished["outcome"] == Outcome.SUPERSEDED.value
    # AND the rotator's own version carries no label a later rotation would trip over
    view = world.view(secret.name)
    assert view is not None
    assert view.versions_with("AWSPENDING") == []
    assert world.dead_letter_count() == 0
    check_invariants(world)
