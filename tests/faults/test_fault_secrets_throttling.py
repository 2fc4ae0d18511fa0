"""Secrets Manager throttles or fails calls mid-rotation: the key is still stored, once.

The rotator's boto3 clients retry throttles and 5xx faults themselves (standard mode,
3 retries: 4 attempts), so 4 faults in a row are what first reach the product's own handling.
Faults other than the throttled write are InternalServiceError (HTTP 500), which the client
retries after milliseconds rather than seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from faults_support import World, check_invariants

from keyrotation.state_tags import LAST_ROTATED_TAG

pytestmark = pytest.mark.timeout(90)

THROTTLE = "ThrottlingException"
SERVICE_FAULT = "InternalServiceError"
CLIENT_ATTEMPTS = 4


@pytest.mark.parametrize("count", [2, CLIENT_ATTEMPTS])
def test_rotator_stores_a_refreshed_key_through_throttled_writes_in_one_invocation(
    world: World, real_handler: Callable[..., Any], count: int
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/throttled-write")
    world.scan()
    # AND Secrets Manager throttling the next writes of a value, right after Momento's grant
    world.emulator.inject_fault("secretsmanager", "PutSecretValue", THROTTLE, count=count)
    world.emulator.clear_call_counts()

    # WHEN the rotator drains the queue
    reports = world.drain(real_handler())

    # THEN the refreshed key was stored by the same invocation, with the same token retried
    assert [report.received for report in reports if report.received] == [1]
    (grant,) = world.grants
    assert world.current_document(secret.name)["apiKey"] == grant.new_key.stored_key
    assert world.call_counts()["secretsmanager.PutSecretValue"] == count + 1
    # AND nothing reached the DLQ
    assert world.dead_letter_count() == 0
    check_invariants(world)


@pytest.mark.parametrize("action", ["DescribeSecret", "UpdateSecretVersionStage", "TagResource"])
def test_rotator_rotates_once_when_another_step_fails_past_its_client_retries(
    world: World, real_handler: Callable[..., Any], action: str
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in(f"app/failing-{action.lower()}")
    world.scan()
    # AND one step of the rotation failing beyond what the client retries by itself
    world.emulator.inject_fault(
        "secretsmanager", action, SERVICE_FAULT, count=CLIENT_ATTEMPTS, status=500
    )

    # WHEN the rotator drains the queue
    reports = world.drain(real_handler())

    # THEN the delivery failed once, was retried, and the key was rotated with one refresh
    assert sum(report.failed for report in reports) == 1
    (grant,) = world.grants
    assert world.current_document(secret.name)["apiKey"] == grant.new_key.stored_key
    view = world.view(secret.name)
    assert view is not None and LAST_ROTATED_TAG in view.tags
    assert world.dead_letter_count() == 0
    check_invariants(world)


@pytest.mark.usefixtures("quick_sibling_looks")
def test_rotator_dead_letters_a_granted_key_it_could_never_write(
    world: World, real_handler: Callable[..., Any]
) -> None:
    # NOTE: the in-invocation retries of the write are the granted key's only chance: once the
    # invocation gives up, the key is lost with the spent refresh token, as in a crash between
    # the grant and the write, and the next attempt's refresh is refused.

    # GIVEN a due secret, and every write throttled for longer than the rotator retries it
    secret = world.opted_in("app/never-written")
    world.scan()
    world.emulator.inject_fault("secretsmanager", "PutSecretValue", THROTTLE, count=CLIENT_ATTEMPTS)

    # WHEN the rotator drains the queue, configured to write once per invocation
    world.drain(real_handler(WRITE_RETRY_ATTEMPTS="1"))

    # THEN the stored secret is unchanged and the DLQ says the refresh was refused
    view, baseline = world.view(secret.name), world.baselines[secret.name]
    assert view is not None
    assert (view.current_id, view.current_value) == (baseline.current_id, baseline.current_value)
    (letter,) = world.dead_letters()
    assert letter.reason == "refresh-rejected"
    world.rebaseline(secret.name)
    check_invariants(world, lost_grants=1)
