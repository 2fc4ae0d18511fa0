"""Poison input: malformed messages, secrets not in care, events that are not SQS batches."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from faults_support import World, check_invariants

from keyrotation.invocation import UnsupportedEvent
from keyrotation.messages import RotationRequest
from keyrotation.rotation import Outcome
from localenv.lambda_runtime import LambdaContext

pytestmark = pytest.mark.timeout(60)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/x-AbCdEf"

BODIES = {
    "not-json": "{secretArn: oops",
    "json-array": json.dumps([{"v": 1, "secretArn": ARN, "reason": "due"}]),
    "unknown-version": json.dumps({"v": 2, "secretArn": ARN, "reason": "due"}),
    "secret-name-not-arn": json.dumps({"v": 1, "secretArn": "app/x", "reason": "due"}),
    "unknown-reason": json.dumps({"v": 1, "secretArn": ARN, "reason": "because"}),
    "oversized": json.dumps({"v": 1, "secretArn": ARN, "reason": "due", "pad": "x" * 5000}),
}


@pytest.mark.parametrize("body", list(BODIES))
def test_rotator_dead_letters_a_malformed_message_once_without_touching_any_secret(
    world: World, real_handler: Callable[..., Any], body: str
) -> None:
    # GIVEN a message on the rotation queue that this tool did not write
    message_id = world.enqueue_raw(BODIES[body])
    world.emulator.clear_call_counts()

    # WHEN the rotator drains the queue
    reports = world.drain(real_handler())

    # THEN the message was delivered once and dead-lettered as malformed, naming the message
    # and what is wrong with it
    assert sum(report.received for report in reports) == 1
    (letter,) = world.dead_letters()
    assert letter.reason == "malformed-message"
    assert letter.attributes["sourceMessageId"] == message_id
    assert letter.detail.startswith(("the message body", "unsupported", "secretArn", "reason"))
    # AND no secret was read or written, and Momento was not called
    assert not [call for call in world.call_counts() if call.startswith("secretsmanager.")]
    assert world.refresh_calls == 0
    check_invariants(world)


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param({"team": "platform"}, id="untagged"),
        pytest.param({"momento-token-old": "yes"}, id="prefix-tagged"),
    ],
)
def test_rotator_skips_a_request_for_a_secret_that_is_not_opted_in(
    world: World, real_handler: Callable[..., Any], tags: dict[str, str]
) -> None:
    # GIVEN a due key in a secret that is not opted in (untagged, or a look-alike tag)
    secret = world.opted_in("app/bystander", tags=tags)
    # AND a request for it on the queue all the same
    world.enqueue(RotationRequest(secret.arn, "replay"))

    # WHEN the rotator drains the queue
    world.drain(real_handler())

    # THEN it was skipped, not dead-lettered, and the secret is exactly as it was
    (finished,) = world.logs.with_message("rotation finished")
    assert finished["outcome"] == Outcome.SKIPPED.value
    assert world.dead_letter_count() == 0
    assert world.grants == []
    check_invariants(world)


def _sqs_record(body: str = "{}") -> dict[str, Any]:
    return {"messageId": "m-1", "body": body, "eventSource": "aws:sqs", "attributes": {}}


NOT_SQS = {
    "empty-object": {},
    "no-records": {"Records": []},
    "sns-notification": {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]},
    "s3-notification": {"Records": [{"eventSource": "aws:s3", "s3": {}}]},
    "sqs-mixed-with-sns": {"Records": [_sqs_record(), {"eventSource": "aws:sns"}]},
    "records-not-a-list": {"Records": {"eventSource": "aws:sqs"}},
    "scheduled-event": {"source": "aws.events", "detail-type": "Scheduled Event"},
    "native-rotation-step": {"Step": "createSecret", "SecretId": ARN, "ClientRequestToken": "t"},
    "secret-id-not-text": {"SecretId": 42},
    "a-list": [{"SecretId": ARN}],
}


@pytest.mark.filterwarnings("ignore:No application metrics")
@pytest.mark.parametrize("event", list(NOT_SQS))
def test_rotator_refuses_an_event_it_does_not_understand(
    world: World, real_handler: Callable[..., Any], event: str
) -> None:
    # GIVEN an opted-in, due secret, and an event that is neither an SQS batch nor a request
    world.opted_in("app/untouched")
    handler = real_handler()
    world.emulator.clear_call_counts()

    # WHEN the rotator is invoked with it
    with pytest.raises(UnsupportedEvent) as refused:
        handler(NOT_SQS[event], LambdaContext())

    # THEN it raised (Lambda reports an error), instead of answering "all succeeded"
    world.texts.append(str(refused.value))
    # AND nothing was read, written or refreshed
    assert not [call for call in world.call_counts() if call.startswith("secretsmanager.")]
    assert world.refresh_calls == 0
    check_invariants(world)


def test_rotator_fails_only_the_bad_records_of_a_mixed_batch(
    world: World, real_handler: Callable[..., Any]
) -> None:
    # GIVEN one batch holding, in this order: a secret whose read fails past the client's
    # retries, three healthy due secrets, a malformed message and a secret that cannot be
    # refreshed (a v2 key)
    throttled = world.opted_in("app/batch-failing-read")
    healthy = [world.opted_in(f"app/batch-healthy-{i}") for i in range(3)]
    v2 = world.mint(form="v2")
    broken = world.seed(
        "app/batch-v2",
        json.dumps({"apiKey": v2.stored_key, "validUntil": str(v2.valid_until)}),
        {"momento-token": "yes"},
        v2,
    )
    ids = {}
    for secret in [throttled, *healthy]:
        ids[secret.name] = world.enqueue(RotationRequest(secret.arn, "inspect"))
    ids["malformed"] = world.enqueue_raw("not a rotation request")
    ids[broken.name] = world.enqueue(RotationRequest(broken.arn, "inspect"))
    world.emulator.inject_fault(
        "secretsmanager", "GetSecretValue", "InternalServiceError", count=4, status=500
    )

    answers: list[dict[str, Any]] = []
    real = real_handler()

    def handler(event: dict[str, Any], context: Any) -> Any:
        assert len(event["Records"]) == len(ids), "the test needs the whole batch at once"
        answers.append(real(event, context))
        return answers[-1]

    # WHEN the rotator takes the batch
    world.deliver(handler)

    # THEN only the failing record is reported failed, to be delivered again
    assert answers[0]["batchItemFailures"] == [{"itemIdentifier": ids[throttled.name]}]
    # AND the healthy secrets were rotated in the same invocation
    assert len(world.grants) == len(healthy)
    for secret in healthy:
        assert world.current_document(secret.name)["apiKey"] != secret.key.stored_key  # type: ignore[union-attr]
    # AND the two poison records, and only they, were dead-lettered
    assert sorted(letter.reason for letter in world.dead_letters()) == [
        "malformed-message",
        "not-refreshable",
    ]

    # WHEN the failing record comes back
    world.drain(real)

    # THEN it rotates too, and nothing else reached the DLQ
    assert len(world.grants) == len(healthy) + 1
    assert world.dead_letter_count() == 2
    check_invariants(world)
