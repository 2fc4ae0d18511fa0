"""What the rotator does with each kind of event it can be invoked with."""

from __future__ import annotations

import pytest

from keyrotation import invocation, telemetry
from keyrotation.errors import MomentoUnavailable
from keyrotation.invocation import UnsupportedEvent
from keyrotation.messages import RotationRequest
from keyrotation.processing import RecordProcessor
from keyrotation.rotation import Outcome, RotationResult

ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/app-AbC123"


class FakeRotator:
    """Answers every request with NOT_DUE, except for secrets told to fail."""

    def __init__(self) -> None:
        self.requests: list[RotationRequest] = []
        self.remaining: list[float] = []
        self.failing: set[str] = set()

    def rotate(self, request: RotationRequest, remaining_seconds) -> RotationResult:
        self.requests.append(request)
        self.remaining.append(remaining_seconds())
        if request.secret_id in self.failing:
            raise MomentoUnavailable(request.secret_id, "UNAVAILABLE")
        return RotationResult(request.secret_id, Outcome.NOT_DUE, "not due", "v-1", 1)

    def record_failure(self, secret_id: str, reason: str) -> None:
        raise AssertionError("no permanent failure is expected here")


class Context:
    function_name = "rotator"
    aws_request_id = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 12_500


@pytest.fixture
def rotator() -> FakeRotator:
    return FakeRotator()


@pytest.fixture
def processor(rotator, sqs, settings, metrics, now) -> RecordProcessor:
    return RecordProcessor(rotator, sqs, settings, metrics, clock=lambda: now)


def _sqs_record(n: int, secret_id: str) -> dict:
    return {
        "messageId": f"message-{n}",
        "receiptHandle": f"receipt-{n}",
        "body": RotationRequest(secret_id, "due").to_body(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": f"group-{n}"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:rotation.fifo",
        "awsRegion": "eu-west-1",
    }


UNSUPPORTED = {
    "a-list": [{"SecretId": ARN}],
    "a-string": ARN,
    "none": None,
    "empty-object": {},
    "secret-id-not-a-string": {"SecretId": 12},
    "empty-secret-id": {"SecretId": ""},
    "records-from-sns": {"Records": [{"EventSource": "aws:sns", "Sns": {}}]},
    "records-mixed-sources": {
        "Records": [_sqs_record(1, ARN), {**_sqs_record(2, ARN), "eventSource": "aws:kinesis"}]
    },
    "records-not-objects": {"Records": [_sqs_record(1, ARN), "message-2"]},
    "records-empty": {"Records": []},
    "records-not-a-list": {"Records": {"messageId": "m"}},
    "native-rotation-step": {
        "SecretId": ARN,
        "ClientRequestToken": "c1a5f6d2-0000-4000-8000-000000000001",
        "Step": "createSecret",
    },
}


@pytest.mark.parametrize("event", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_dispatch_refuses_events_it_does_not_understand(rotator, processor, event) -> None:
    # GIVEN an event that is neither an SQS batch nor a direct request
    # WHEN the rotator is invoked with it
    # THEN it fails loudly, and nothing is rotated
    with pytest.raises(UnsupportedEvent):
        invocation.dispatch(event, Context(), rotator, processor)
    assert rotator.requests == []


@pytest.mark.parametrize(
    "field", ["SecretId", "momento_auth_token_secret_name"], ids=["secret-id", "legacy-name"]
)
def test_dispatch_rotates_a_directly_named_secret_on_request(
    rotator, processor, metrics, field
) -> None:
    # GIVEN a direct invocation in either shape users of the older Lambda have
    event = {field: "momento/app"}

    # WHEN the rotator is invoked with it
    answer = invocation.dispatch(event, Context(), rotator, processor)

    # THEN the secret is rotated as an operator's request, with the invocation's time left
    assert rotator.requests == [RotationRequest("momento/app", "manual")]
    assert rotator.remaining == [12.5]

    # AND the answer is the result, counted like a queued rotation
    assert answer == {
        "secretId": "momento/app",
        "outcome": "not-due",
        "detail": "not due",
        "versionId": "v-1",
        "validUntil": 1,
    }
    assert metrics == [telemetry.ROTATION_NOT_DUE]


def test_dispatch_reports_only_the_failed_record_of_a_batch(rotator, processor) -> None:
    # GIVEN a batch of three records, the middle one for a secret whose rotation fails
    failing = ARN.replace("app", "failing")
    rotator.failing.add(failing)
    records = [_sqs_record(1, ARN + "-1"), _sqs_record(2, failing), _sqs_record(3, ARN + "-3")]

    # WHEN the batch is dispatched
    answer = invocation.dispatch({"Records": records}, Context(), rotator, processor)

    # THEN only that record is reported failed, and the records after it were still processed
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-2"}]}
    assert [request.secret_id for request in rotator.requests] == [
        ARN + "-1",
        failing,
        ARN + "-3",
    ]


def test_dispatch_reports_every_record_when_all_fail_instead_of_raising(rotator, processor):
    # GIVEN a batch whose every rotation fails retryably
    rotator.failing.update({ARN + "-1", ARN + "-2"})
    records = [_sqs_record(1, ARN + "-1"), _sqs_record(2, ARN + "-2")]

    # WHEN it is dispatched
    answer = invocation.dispatch({"Records": records}, Context(), rotator, processor)

    # THEN each record is reported, so Lambda retries each one rather than the whole call
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": "message-1"}, {"itemIdentifier": "message-2"}]
    }


def test_dispatch_reports_no_failures_for_a_clean_batch(rotator, processor) -> None:
    records = [_sqs_record(1, ARN + "-1"), _sqs_record(2, ARN + "-2")]
    answer = invocation.dispatch({"Records": records}, Context(), rotator, processor)
    assert answer == {"batchItemFailures": []}


def test_dispatch_without_a_lambda_context_has_unlimited_time(rotator, processor) -> None:
    invocation.dispatch({"SecretId": "momento/app"}, None, rotator, processor)
    assert rotator.remaining == [float("inf")]
