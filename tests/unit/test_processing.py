"""One queue record: rotate, then tell SQS what to do with the message."""

from __future__ import annotations

import pytest

from keyrotation import processing, state_tags, telemetry
from keyrotation.errors import AwsUnavailable, MomentoUnavailable, NotEnoughTime
from keyrotation.messages import RotationRequest
from keyrotation.processing import QueueRecord, RecordProcessor
from keyrotation.rotation import Rotator
from keyrotation.settings import DAY

NAME = "momento/app"
MESSAGE_ID = "5d0f6c1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


@pytest.fixture
def processor(sm, momento, sqs, settings, metrics, now) -> RecordProcessor:
    rotator = Rotator(sm, momento, settings, clock=lambda: now, sleep=lambda seconds: None)
    return RecordProcessor(rotator, sqs, settings, metrics, clock=lambda: now)


def _record(arn: str, attempt: int = 1, body: str | None = None) -> QueueRecord:
    body = RotationRequest(arn, "due").to_body() if body is None else body
    return QueueRecord(MESSAGE_ID, body, attempt, receipt_handle="receipt-1")


def _expiring_in(keys, seconds_left: int) -> str:
    valid_until = keys.now + seconds_left
    return keys.secret(keys.v1(valid_until), str(valid_until))


def _attributes(message: dict) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}


def _handle(processor: RecordProcessor, record: QueueRecord) -> None:
    processor.handle(record, remaining_seconds=lambda: 60.0)


def test_handle_counts_a_finished_rotation_and_sends_nothing(processor, sm, sqs, keys, metrics):
    # GIVEN a due secret
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))

    # WHEN its record is handled
    _handle(processor, _record(arn))

    # THEN the success is counted and the message needs no further send
    assert metrics == [telemetry.ROTATION_SUCCEEDED]
    assert (sqs.sent, sqs.visibility) == ([], [])


def test_handle_dead_letters_a_permanent_failure_and_tags_the_secret(
    processor, sm, sqs, keys, metrics, settings, now
):
    # GIVEN a due v2 key, which cannot be refreshed
    arn = sm.create(NAME, keys.secret(keys.v2(now + DAY), now + DAY))
    record = _record(arn)

    # WHEN its record is handled
    _handle(processor, record)  # THEN nothing is raised: the message is done with

    # AND it is sent to the dead-letter queue with its reason and the secret
    [message] = sqs.sent
    attributes = _attributes(message)
    assert message["QueueUrl"] == settings.dead_letter_queue_url
    assert message["MessageBody"] == record.body
    assert (attributes["reason"], attributes["secretArn"]) == ("not-refreshable", arn)
    assert attributes["sourceMessageId"] == MESSAGE_ID

    # AND the secret is tagged as failing on its current version, so scans stop sending it
    failure = state_tags.parse_failure(sm.tags_of(arn)[state_tags.FAILURE_TAG])
    assert (failure.reason, failure.version_id) == (
        "not-refreshable",
        sm.version_with(arn, "AWSCURRENT"),
    )
    assert telemetry.ROTATION_FAILED_PERMANENT in metrics
    assert telemetry.ROTATION_DEAD_LETTERED in metrics


def test_handle_backs_off_a_transient_failure_with_attempts_left(
    processor, sm, sqs, momento, keys, settings
):
    # GIVEN a due key with two days left and Momento unavailable, on the second delivery
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    momento.refresh_error = MomentoUnavailable(NAME, "UNAVAILABLE")

    # WHEN its record is handled
    # THEN the failure is raised (a batch item failure) and the retry is delayed by the backoff
    with pytest.raises(MomentoUnavailable):
        _handle(processor, _record(arn, attempt=2))
    assert sqs.visibility == [(settings.rotation_queue_url, "receipt-1", 600)]
    assert sqs.sent == []


def test_handle_dead_letters_a_transient_failure_on_the_last_attempt(
    processor, sm, sqs, momento, keys, settings, metrics
):
    # GIVEN Momento still unavailable on the last delivery SQS will make
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    momento.refresh_error = MomentoUnavailable(NAME, "UNAVAILABLE")

    # WHEN its record is handled
    _handle(processor, _record(arn, attempt=settings.max_receive_count))

    # THEN it is dead-lettered as retries exhausted instead of raised
    [message] = sqs.sent
    assert _attributes(message)["reason"] == "retries-exhausted"
    assert _attributes(message)["attempts"] == str(settings.max_receive_count)
    assert sqs.visibility == []
    assert telemetry.ROTATION_DEADLINE_AT_RISK not in metrics


# The retries after attempt 1 take 4500 s (300+600+1200+2400); after attempt 4, 2400 s.


@pytest.mark.parametrize(
    ("attempt", "seconds_left"),
    [(1, 3_600), (1, 4_499), (4, 2_399)],
    ids=["first-try-an-hour-left", "first-try-just-under-the-budget", "fourth-try-under-it"],
)
def test_handle_escalates_a_transient_failure_when_the_key_expires_before_the_retries(
    processor, sm, sqs, momento, keys, metrics, attempt, seconds_left
):
    # GIVEN Momento unavailable for a key that would expire before the remaining retries end
    arn = sm.create(NAME, _expiring_in(keys, seconds_left))
    momento.refresh_error = MomentoUnavailable(NAME, "DEADLINE_EXCEEDED")

    # WHEN its record is handled
    with pytest.raises(MomentoUnavailable):
        _handle(processor, _record(arn, attempt=attempt))

    # THEN it is escalated at once (a DLQ entry of its own reason, and the metric behind the
    # alarm), and still retried, never later than a quarter of the time left
    assert [_attributes(message)["reason"] for message in sqs.sent] == ["deadline-at-risk"]
    assert telemetry.ROTATION_DEADLINE_AT_RISK in metrics
    [(_, _, delay)] = sqs.visibility
    assert delay == min(settings_backoff(attempt), max(30, seconds_left // 4))


def settings_backoff(attempt: int) -> int:
    from keyrotation.settings import Settings

    return Settings().backoff_seconds(attempt)


def test_handle_postpones_a_record_the_invocation_has_no_time_left_for(
    processor, sm, sqs, keys, metrics
):
    # GIVEN a due secret, handled with almost no time left in the invocation
    arn = sm.create(NAME, keys.due_v1_secret(days_left=0.02))

    # WHEN its record is handled
    with pytest.raises(NotEnoughTime):
        processor.handle(_record(arn, attempt=1), remaining_seconds=lambda: 1.0)

    # THEN it is retried within seconds, neither escalated nor dead-lettered
    assert sqs.sent == []
    assert telemetry.ROTATION_DEADLINE_AT_RISK not in metrics
    [(_, _, delay)] = sqs.visibility
    assert delay <= 10


@pytest.mark.parametrize(
    ("attempt", "seconds_left"),
    [(1, 4_500), (4, 3_600)],
    ids=["first-try-exactly-the-budget-left", "fourth-try-an-hour-left"],
)
def test_handle_retries_a_transient_failure_while_the_retries_fit_before_expiry(
    processor, sm, sqs, momento, keys, metrics, attempt, seconds_left
):
    # GIVEN Momento unavailable for a key that outlives the remaining retries
    arn = sm.create(NAME, _expiring_in(keys, seconds_left))
    momento.refresh_error = MomentoUnavailable(NAME, "DEADLINE_EXCEEDED")

    # WHEN its record is handled
    # THEN it is left to SQS to deliver again, with no escalation
    with pytest.raises(MomentoUnavailable):
        _handle(processor, _record(arn, attempt=attempt))
    assert sqs.sent == []
    assert telemetry.ROTATION_DEADLINE_AT_RISK not in metrics


def test_handle_dead_letters_a_malformed_body_without_touching_secrets(processor, sm, sqs):
    # GIVEN a message this tool did not write
    record = _record("unused", body='{"hello": "world"}')

    # WHEN it is handled
    _handle(processor, record)

    # THEN it is dead-lettered as malformed, and no secret is read
    [message] = sqs.sent
    attributes = _attributes(message)
    assert attributes["reason"] == "malformed-message"
    assert "secretArn" not in attributes
    assert sm.calls == []


def _permanent(sm, momento, keys, settings) -> QueueRecord:
    return _record(sm.create(NAME, keys.secret(keys.v2(keys.now + DAY), keys.now + DAY)))


def _malformed(sm, momento, keys, settings) -> QueueRecord:
    return _record("unused", body="not json")


def _exhausted(sm, momento, keys, settings) -> QueueRecord:
    momento.refresh_error = MomentoUnavailable(NAME, "UNAVAILABLE")
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    return _record(arn, attempt=settings.max_receive_count)


@pytest.mark.parametrize("arrange", [_permanent, _malformed, _exhausted])
def test_handle_raises_when_the_dead_letter_queue_cannot_be_reached(
    processor, sm, sqs, momento, keys, settings, arrange
):
    # GIVEN a record that must be dead-lettered, and a dead-letter queue that refuses it
    record = arrange(sm, momento, keys, settings)
    sqs.fail("send_message", "KMS.AccessDeniedException")

    # WHEN it is handled
    # THEN the failure is raised, so the message stays on the queue instead of being lost
    with pytest.raises(AwsUnavailable):
        _handle(processor, record)


def test_handle_raises_when_no_dead_letter_queue_is_configured(
    sm, momento, sqs, metrics, keys, now, settings
):
    # GIVEN a processor with nowhere to dead-letter, and a permanently failing secret
    settings = settings.with_overrides(dead_letter_queue_url=None)
    rotator = Rotator(sm, momento, settings, clock=lambda: now)
    processor = RecordProcessor(rotator, sqs, settings, metrics, clock=lambda: now)
    arn = sm.create(NAME, keys.secret(keys.v2(now + DAY), now + DAY))

    # WHEN its record is handled
    # THEN the failure is raised, naming the missing setting, rather than dropped
    with pytest.raises(AwsUnavailable, match="DEAD_LETTER_QUEUE_URL"):
        _handle(processor, _record(arn))


def test_handle_still_retries_when_the_backoff_cannot_be_set(processor, sm, sqs, momento, keys):
    # GIVEN the visibility change fails
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    momento.refresh_error = MomentoUnavailable(NAME, "UNAVAILABLE")
    sqs.fail("change_message_visibility", "ReceiptHandleIsInvalid")

    # THEN the record is still reported as failed, for SQS to deliver again
    with pytest.raises(MomentoUnavailable):
        _handle(processor, _record(arn))


def test_queue_record_from_lambda_reads_the_parts_it_uses() -> None:
    record = QueueRecord.from_lambda(
        {
            "messageId": MESSAGE_ID,
            "receiptHandle": "receipt-9",
            "body": "{}",
            "attributes": {"ApproximateReceiveCount": "3", "MessageGroupId": "group-1"},
        }
    )
    assert record == QueueRecord(MESSAGE_ID, "{}", 3, "receipt-9", "group-1")


def test_handle_logs_a_crash_of_no_known_kind_once_without_its_message(
    processor, sm, momento, keys, monkeypatch
):
    # GIVEN a rotation that fails with an exception this tool does not know, whose message
    # happens to carry data
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    momento.refresh_error = ValueError("unexpected answer holding rt-secret-material")
    errors: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        processing.logger, "error", lambda message, extra: errors.append((message, extra))
    )

    # WHEN its record is handled
    with pytest.raises(ValueError):
        _handle(processor, _record(arn))

    # THEN one error line names the secret and the exception type, never its message, and the
    # record is left for SQS to retry
    assert errors == [("rotation crashed", {"secret_arn": arn, "error": "ValueError"})]
