"""One queue record, handled: rotate, then turn the outcome into what SQS should do with it.

    rotated / not due / superseded / skipped   → done (the message is deleted)
    permanent failure                           → dead-lettered with its reason, secret tagged
    transient failure, attempts left            → backed off, reported as a batch item failure
    transient failure, last attempt             → dead-lettered as retries-exhausted
    transient failure, key expires before the
      remaining retries would finish            → dead-lettered as deadline-at-risk (escalated)

This is the one place where failures become SQS behaviour; each failure is logged here, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from keyrotation import telemetry
from keyrotation.errors import (
    AwsUnavailable,
    NotEnoughTime,
    PermanentError,
    RotationError,
    TransientError,
)
from keyrotation.messages import RotationRequest, parse_body
from keyrotation.rotation import Outcome, RotationResult, Rotator
from keyrotation.settings import Settings
from keyrotation.state_tags import utc_stamp

logger = Logger(child=True)

NOT_ENOUGH_TIME_RETRY_SECONDS = 5
MIN_DEADLINE_RETRY_SECONDS = 30

OUTCOME_METRICS = {
    Outcome.ROTATED: telemetry.ROTATION_SUCCEEDED,
    Outcome.RESUMED: telemetry.ROTATION_SUCCEEDED,
    Outcome.NOT_DUE: telemetry.ROTATION_NOT_DUE,
    Outcome.SUPERSEDED: telemetry.ROTATION_SUPERSEDED,
    Outcome.SKIPPED: telemetry.ROTATION_SKIPPED,
}


class MetricSink(Protocol):
    def __call__(self, name: str, value: int = 1) -> None: ...


@dataclass(frozen=True)
class QueueRecord:
    """The parts of an SQS record this tool uses."""

    message_id: str
    body: str
    receive_count: int
    receipt_handle: str | None = None
    group_id: str | None = None

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> QueueRecord:
        attributes = record.get("attributes") or {}
        return cls(
            message_id=str(record.get("messageId", "")),
            body=str(record.get("body", "")),
            receive_count=int(attributes.get("ApproximateReceiveCount", "1") or 1),
            receipt_handle=record.get("receiptHandle"),
            group_id=attributes.get("MessageGroupId"),
        )


class RecordProcessor:
    def __init__(
        self,
        rotator: Rotator,
        sqs: Any,
        settings: Settings,
        metric: MetricSink,
        clock: Callable[[], float],
    ) -> None:
        self._rotator = rotator
        self._sqs = sqs
        self._settings = settings
        self._metric = metric
        self._clock = clock

    def handle(self, record: QueueRecord, remaining_seconds: Callable[[], float]) -> None:
        """Process one record. Raises `TransientError` when SQS should deliver it again."""
        try:
            request = parse_body(record.message_id, record.body)
        except PermanentError as error:
            self._dead_letter(record, None, error.reason, error.detail)
            return

        try:
            result = self._rotator.rotate(request, remaining_seconds)
        except PermanentError as error:
            self._on_permanent(record, request, error)
            return
        except RotationError as error:
            transient = error if isinstance(error, TransientError) else _unknown(error)
            if self._on_transient(record, request, transient):
                raise transient from None
            return
        except Exception as error:
            # A fault of no known kind (a bug, a malformed AWS answer): say so once, without the
            # message, which could hold data, and let SQS retry it until it is dead-lettered.
            logger.error(
                "rotation crashed",
                extra={"secret_arn": request.secret_id, "error": type(error).__name__},
            )
            raise
        self.report(result)

    def report(self, result: RotationResult) -> None:
        """Count and log a finished rotation (queued or direct)."""
        self._metric(OUTCOME_METRICS[result.outcome])
        logger.info(
            "rotation finished",
            extra={
                "secret_arn": result.secret_id,
                "outcome": result.outcome.value,
                "detail": result.detail,
                "version_id": result.version_id,
                "valid_until": result.valid_until,
            },
        )

    def _on_permanent(
        self, record: QueueRecord, request: RotationRequest, error: PermanentError
    ) -> None:
        self._metric(telemetry.ROTATION_FAILED_PERMANENT)
        logger.error(
            "rotation failed permanently",
            extra={"secret_arn": request.secret_id, "reason": error.reason, "detail": str(error)},
        )
        self._rotator.record_failure(request.secret_id, error.reason, error.version_id)
        self._dead_letter(record, request, error.reason, str(error))

    def _on_transient(
        self, record: QueueRecord, request: RotationRequest, error: TransientError
    ) -> bool:
        """Dead-letter or back off; True when SQS should deliver the record again."""
        self._metric(telemetry.ROTATION_FAILED_TRANSIENT)
        attempt = record.receive_count
        seconds_left = error.seconds_left
        if seconds_left is None and request.valid_until:
            # The rotator failed before it could read the secret: trust the scanner's expiry.
            seconds_left = int(request.valid_until - self._clock())
        budget = self._settings.retry_budget_seconds(from_attempt=attempt)
        facts = {
            "secret_arn": request.secret_id,
            "reason": error.reason,
            "detail": str(error),
            "attempt": attempt,
            "seconds_left": seconds_left,
            "retry_budget_seconds": budget,
        }

        if isinstance(error, NotEnoughTime):
            # Not a fault of the secret: the record came late in a long batch. Try again soon.
            logger.info("rotation postponed: the invocation is nearly out of time", extra=facts)
            self._back_off(record, NOT_ENOUGH_TIME_RETRY_SECONDS)
            return True
        if attempt >= self._settings.max_receive_count:
            logger.error("rotation retries exhausted", extra=facts)
            self._dead_letter(record, request, "retries-exhausted", f"{error} (attempt {attempt})")
            return False

        delay = self._settings.backoff_seconds(attempt)
        if seconds_left is not None and seconds_left < budget:
            # Escalate now (metric, alarm, a DLQ entry with its own reason) rather than after
            # the key has expired, and keep retrying on a schedule that fits before expiry.
            self._metric(telemetry.ROTATION_DEADLINE_AT_RISK)
            logger.error("key may expire before its retries finish: escalating", extra=facts)
            self._dead_letter(record, request, "deadline-at-risk", f"{error} (attempt {attempt})")
            delay = min(delay, max(MIN_DEADLINE_RETRY_SECONDS, max(seconds_left, 0) // 4))
        logger.warning("rotation failed, will retry", extra={**facts, "retry_in_seconds": delay})
        self._back_off(record, delay)
        return True

    def _back_off(self, record: QueueRecord, delay: int) -> None:
        if not record.receipt_handle or not self._settings.rotation_queue_url:
            return
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._settings.rotation_queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=delay,
            )
        except (ClientError, BotoCoreError) as error:
            # The queue's own visibility timeout still spaces the retry out.
            logger.warning("could not delay the retry", extra={"error": type(error).__name__})

    def _dead_letter(
        self, record: QueueRecord, request: RotationRequest | None, reason: str, detail: str
    ) -> None:
        """Send the record to the DLQ with its reason. Raises `AwsUnavailable` if that fails,
        so the message stays on the rotation queue: a failure is never silently dropped."""
        queue_url = self._settings.dead_letter_queue_url
        secret = request.secret_id if request else ""
        if not queue_url:
            raise AwsUnavailable(
                secret or record.message_id, "no DEAD_LETTER_QUEUE_URL to report to"
            )
        attributes = {
            "reason": reason,
            "detail": detail[:1000],
            "attempts": str(record.receive_count),
            "failedAt": utc_stamp(self._clock()),
            "sourceMessageId": record.message_id,
        }
        if secret:
            attributes["secretArn"] = secret
        group = record.group_id or (request.group_id() if request else record.message_id)
        dedup = hashlib.sha256(f"{record.message_id}\n{reason}".encode()).hexdigest()
        try:
            self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=record.body or "{}",
                MessageGroupId=group,
                MessageDeduplicationId=dedup,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value or "-"}
                    for name, value in attributes.items()
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise AwsUnavailable(
                secret or record.message_id, f"could not dead-letter: {type(error).__name__}"
            ) from None
        self._metric(telemetry.ROTATION_DEAD_LETTERED)


def _unknown(error: RotationError) -> TransientError:
    """A failure of no known kind is retried: SQS dead-letters it if it keeps happening."""
    transient = AwsUnavailable(error.secret_id, error.detail)
    transient.seconds_left, transient.version_id = error.seconds_left, error.version_id
    return transient
