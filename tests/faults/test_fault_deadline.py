"""A transient failure when the key would expire before the retries finish: escalate at once.

Escalating means a DLQ entry with its own reason and the metric behind the alarm at the first
such failure, while the rotation goes on being retried on a schedule that fits before expiry.
The back-off is scaled down (4 s doubling, five receives: 60 s of retries) and the key given
45 s to live, so waiting out the retries would let it expire; the time-to-spare scenario keeps
the deployed shape (60 s doubling).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from faults_support import LIFETIME, Seeded, World, check_invariants

from keyrotation import secrets
from keyrotation.key_format import inspect_key
from keyrotation.momento_auth import MomentoAuth
from keyrotation.secret_value import parse_secret
from keyrotation.state_tags import EXPIRY_TAG, ExpiryRecord
from localenv.momento_standin import IssuedKey

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:No application metrics"),
]

DEPLOYED_BACKOFF = {"BACKOFF_BASE_SECONDS": "60"}
SCALED_BACKOFF = {"BACKOFF_BASE_SECONDS": "4"}
RETRY_BUDGET = 4 + 8 + 16 + 32
SECONDS_LEFT = 45


def _key_expiring_in(world: World, seconds: int) -> IssuedKey:
    return world.standin.mint_key(LIFETIME, issued_at=time.time() - LIFETIME + seconds)


def _emf_metrics(stdout: str) -> list[str]:
    names: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                names += [metric["Name"] for metric in directive["Metrics"]]
    return names


def _record_expiry(world: World, secret: Seeded, key: IssuedKey) -> None:
    """The expiry tag an earlier, not-due run of the rotator would have left."""
    version = world.baselines[secret.name].current_id or ""
    record = ExpiryRecord(
        version, key.valid_until, LIFETIME, inspect_key("x", key.stored_key).format
    )
    world.sm.tag_resource(SecretId=secret.arn, Tags=[{"Key": EXPIRY_TAG, "Value": record.to_tag()}])
    world.rebaseline(secret.name)


def _refresh_unavailable(world: World, secret: Seeded, key: IssuedKey) -> None:
    world.standin.inject_fault("refresh", grpc.StatusCode.UNAVAILABLE, count=10)


def _secrets_manager_failing_first(world: World, secret: Seeded, key: IssuedKey) -> None:
    # The scanner knew the expiry from the tag; the rotator fails before reading the value.
    _record_expiry(world, secret, key)
    world.emulator.inject_fault(
        "secretsmanager", "DescribeSecret", "InternalServiceError", count=4, status=500
    )


def _verify_unavailable_while_resuming(world: World, secret: Seeded, key: IssuedKey) -> None:
    # An earlier attempt stored the refreshed key as AWSPENDING; Momento now fails the check.
    stored = parse_secret(secret.name, secret.value)
    momento = MomentoAuth(world.standin.address)
    info = inspect_key(secret.name, stored.api_key, stored.refresh_token)
    refreshed = momento.refresh(secret.name, info, stored.refresh_token or "")
    momento.close()
    world.sm.put_secret_value(
        SecretId=secret.arn,
        SecretString=stored.with_refreshed_key(
            refreshed.stored_key, refreshed.refresh_token, refreshed.valid_until
        ),
        ClientRequestToken=secrets.rotation_token(
            secret.arn, world.baselines[secret.name].current_id or ""
        ),
        VersionStages=["AWSPENDING"],
    )
    world.rebaseline(secret.name)
    world.standin.inject_fault("verify", grpc.StatusCode.UNAVAILABLE, count=10)


FAILURES = {
    "refresh-unavailable": _refresh_unavailable,
    "secrets-manager-failing-before-the-read": _secrets_manager_failing_first,
    "verify-unavailable-while-resuming": _verify_unavailable_while_resuming,
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_rotator_escalates_a_transient_failure_when_the_key_would_expire_during_its_retries(
    world: World, real_handler: Callable[..., Any], failure: str
) -> None:
    # GIVEN a due key with 45 s left, less than the 60 s the retries would take
    key = _key_expiring_in(world, SECONDS_LEFT)
    secret = world.opted_in(f"app/{failure}", key)
    assert SECONDS_LEFT < RETRY_BUDGET
    # AND a transient failure in the way of its rotation
    FAILURES[failure](world, secret, key)
    world.scan()
    world.emulator.clear_call_counts()

    # WHEN the rotator takes the request
    report = world.deliver(real_handler(**SCALED_BACKOFF))

    # THEN it is escalated at the first attempt: a DLQ entry naming the secret and the reason
    assert report.failed == 1
    (letter,) = world.dead_letters()
    assert (letter.reason, letter.secret_arn) == ("deadline-at-risk", secret.arn)
    assert secret.name in letter.detail
    # AND the RotationDeadlineAtRisk metric is in the function's EMF output
    assert "RotationDeadlineAtRisk" in _emf_metrics(world.stdout())
    (escalation,) = world.logs.with_message("key may expire before its retries finish: escalating")
    assert escalation["seconds_left"] <= SECONDS_LEFT
    # AND the rotation itself is still retried, within a quarter of the time left
    (retry,) = world.logs.with_message("rotation failed, will retry")
    assert retry["retry_in_seconds"] <= max(30, SECONDS_LEFT // 4)
    assert world.call_counts().get("sqs.ChangeMessageVisibility") == 1
    assert world.rotation_depth() == (0, 1)

    # WHEN the failure clears before the retry comes round
    world.emulator.clear_faults()
    world.standin.clear_faults()
    world.drain(real_handler(**SCALED_BACKOFF))

    # THEN the rotation completes on its own retry (a stored key is promoted, not refreshed
    # again), before the key expires, and the DLQ entry stays for the person it alerted
    (grant,) = world.grants
    assert world.current_document(secret.name)["apiKey"] == grant.new_key.stored_key
    assert world.dead_letter_count() == 1
    check_invariants(world)


def test_rotator_backs_off_a_transient_failure_when_the_key_has_time_to_spare(
    world: World, real_handler: Callable[..., Any]
) -> None:
    # GIVEN a due key with five days left, and Momento failing its refresh
    secret = world.opted_in("app/time-to-spare")
    world.standin.inject_fault("refresh", grpc.StatusCode.UNAVAILABLE)
    world.scan()

    # WHEN the rotator takes the request
    report = world.deliver(real_handler(**DEPLOYED_BACKOFF))

    # THEN it is retried later, after the first back-off step, and not escalated
    assert report.failed == 1
    (retry,) = world.logs.with_message("rotation failed, will retry")
    assert retry["retry_in_seconds"] == 60
    assert world.dead_letter_count() == 0
    assert "RotationDeadlineAtRisk" not in _emf_metrics(world.stdout())
    assert world.rotation_depth() == (0, 1)
    del secret
    check_invariants(world)
