"""An AWSPENDING label left behind by another tool or an old rotation never blocks rotation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from faults_support import CURRENT, PENDING, Seeded, World, check_invariants

from keyrotation import secrets
from keyrotation.key_format import inspect_key
from keyrotation.momento_auth import MomentoAuth
from keyrotation.rotation import Outcome
from keyrotation.secret_value import parse_secret

pytestmark = pytest.mark.timeout(60)


def _another_tools_version(world: World, secret: Seeded) -> None:
    world.sm.put_secret_value(
        SecretId=secret.arn, SecretString="staged by another tool", VersionStages=[PENDING]
    )


def _label_on_the_current_version(world: World, secret: Seeded) -> None:
    current = world.baselines[secret.name].current_id
    world.sm.update_secret_version_stage(
        SecretId=secret.arn, VersionStage=PENDING, MoveToVersionId=current
    )


def _old_rotation_from_a_replaced_version(world: World, secret: Seeded) -> None:
    # An old rotation stored its key from version A; then the owner replaced A by hand.
    old_current = world.baselines[secret.name].current_id or ""
    world.sm.put_secret_value(
        SecretId=secret.arn,
        SecretString=secret.value or "",
        ClientRequestToken=secrets.rotation_token(secret.arn, old_current),
        VersionStages=[PENDING],
    )
    world.sm.put_secret_value(SecretId=secret.arn, SecretString=secret.value or "")


STALE = {
    "another-tools-version": _another_tools_version,
    "label-on-the-current-version": _label_on_the_current_version,
    "old-rotation-from-a-replaced-version": _old_rotation_from_a_replaced_version,
}


@pytest.mark.parametrize("stale", list(STALE))
def test_rotator_clears_a_stale_awspending_label_and_rotates(
    world: World, real_handler: Callable[..., Any], stale: str
) -> None:
    # GIVEN a due secret with an AWSPENDING label this rotation did not write
    secret = world.opted_in(f"app/{stale}")
    STALE[stale](world, secret)
    world.rebaseline(secret.name)
    assert world.baselines[secret.name].versions_with(PENDING)

    # WHEN the scanner runs and the rotator drains the queue
    assert world.scan()["enqueued"] == 1
    world.drain(real_handler())

    # THEN the key was rotated with one refresh, and no AWSPENDING label is left anywhere
    (grant,) = world.grants
    assert world.current_document(secret.name)["apiKey"] == grant.new_key.stored_key
    view = world.view(secret.name)
    assert view is not None and view.versions_with(PENDING) == []
    assert world.logs.with_message("removing a stale AWSPENDING label")
    assert world.dead_letter_count() == 0
    check_invariants(world)


def test_rotator_finishes_its_own_rotation_left_unfinished_long_ago(
    world: World, real_handler: Callable[..., Any]
) -> None:
    # GIVEN a due secret whose earlier rotation stored its refreshed key and then stopped
    secret = world.opted_in("app/unfinished")
    current_id = world.baselines[secret.name].current_id or ""
    stored = parse_secret(secret.name, secret.value)
    momento = MomentoAuth(world.standin.address)
    key = inspect_key(secret.name, stored.api_key, stored.refresh_token)
    refreshed = momento.refresh(secret.name, key, stored.refresh_token or "")
    momento.close()
    world.sm.put_secret_value(
        SecretId=secret.arn,
        SecretString=stored.with_refreshed_key(
            refreshed.stored_key, refreshed.refresh_token, refreshed.valid_until
        ),
        ClientRequestToken=secrets.rotation_token(secret.arn, current_id),
        VersionStages=[PENDING],
    )
    world.rebaseline(secret.name)
    calls = world.refresh_calls

    # WHEN the scanner sees the unfinished rotation and the rotator takes it
    world.scan()
    world.drain(real_handler())

    # THEN the stored key was promoted as it was, without asking Momento again
    assert world.refresh_calls == calls
    assert world.current_document(secret.name)["apiKey"] == refreshed.stored_key
    view = world.view(secret.name)
    assert view is not None and view.versions_with(PENDING) == []
    assert view.versions_with(CURRENT) == [secrets.rotation_token(secret.arn, current_id)]
    (finished,) = world.logs.with_message("rotation finished")
    assert finished["outcome"] == Outcome.RESUMED.value
    assert world.dead_letter_count() == 0
    check_invariants(world)
