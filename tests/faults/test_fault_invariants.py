"""The suite's verdict itself: `check_invariants` notices each kind of broken promise.

Each case breaks one promise by hand, with no rotator involved, so a scenario that passes is
known to pass because the product kept the promise, not because the check looked away.
"""

from __future__ import annotations

import json
import logging

import pytest
from faults_support import World, check_invariants

from keyrotation.key_format import inspect_key
from keyrotation.momento_auth import MomentoAuth

pytestmark = pytest.mark.timeout(30)


def _stray_pending(world: World) -> str:
    secret = world.opted_in("app/stray")
    world.sm.put_secret_value(
        SecretId=secret.arn, SecretString="left over", VersionStages=["AWSPENDING"]
    )
    return "AWSPENDING left on a version that is not current"


def _bystander_changed(world: World) -> str:
    secret = world.opted_in("app/bystander", tags={"momento-token-old": "yes"})
    world.sm.tag_resource(SecretId=secret.arn, Tags=[{"Key": "touched", "Value": "yes"}])
    return "not opted in, yet it changed"


def _key_unusable_without_dlq_entry(world: World) -> str:
    secret = world.opted_in("app/revoked")
    world.standin.revoke(secret.key.stored_key)  # type: ignore[union-attr]
    return "no usable AWSCURRENT and no DLQ entry"


def _granted_key_never_stored(world: World) -> str:
    key = world.mint()
    world.opted_in("app/lost", key)
    momento = MomentoAuth(world.standin.address)
    momento.refresh("app/lost", inspect_key("app/lost", key.stored_key), key.refresh_token or "")
    momento.close()
    return "granted refreshes were never stored"


def _key_in_a_log_line(world: World) -> str:
    secret = world.opted_in("app/logged")
    logging.getLogger().warning("oops %s", json.dumps({"key": secret.key.refresh_token}))  # type: ignore[union-attr]
    return "secret strings appear in a log line"


BROKEN = {
    "stray-awspending": _stray_pending,
    "bystander-changed": _bystander_changed,
    "unusable-key-without-dlq-entry": _key_unusable_without_dlq_entry,
    "granted-key-never-stored": _granted_key_never_stored,
    "key-in-a-log-line": _key_in_a_log_line,
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_invariants_name_each_kind_of_broken_promise(world: World, broken: str) -> None:
    # GIVEN a world in which one promise was broken by hand
    expected = BROKEN[broken](world)

    # WHEN the verdict is taken
    with pytest.raises(AssertionError) as verdict:
        check_invariants(world)

    # THEN it names the broken promise, and shows no secret string while doing so
    assert expected in str(verdict.value)
    assert not any(secret in str(verdict.value) for secret in world.standin.all_secret_strings())
