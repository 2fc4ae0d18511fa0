"""What the rotator does with an event: an SQS batch, or a direct "rotate this secret now".

Direct invocations accept both shapes users of the older rotation Lambda have:
`{"momento_auth_token_secret_name": "<name or ARN>"}` and `{"SecretId": "<name or ARN>"}`.
Anything else is refused with an error: an unknown event is never a silent success.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from keyrotation.messages import RotationRequest
from keyrotation.processing import QueueRecord, RecordProcessor
from keyrotation.rotation import Rotator

logger = Logger(child=True)
DIRECT_FIELDS = ("momento_auth_token_secret_name", "SecretId")


class UnsupportedEvent(ValueError):
    """Raised when the rotator is invoked with an event it does not understand."""


def count(metrics: Metrics, name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def dispatch(
    event: Any, context: Any, rotator: Rotator, processor: RecordProcessor
) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise UnsupportedEvent("the rotator expects a JSON object event")
    if "Records" in event:
        return _batch(event, context, processor)
    if "Step" in event and "ClientRequestToken" in event:
        raise UnsupportedEvent(
            "this is a Secrets Manager rotation event: turn off native rotation on the secret; "
            "this tool rotates by expiry"
        )
    secret_id = next((event[f] for f in DIRECT_FIELDS if isinstance(event.get(f), str)), None)
    if not secret_id:
        raise UnsupportedEvent(
            'expected an SQS batch or {"SecretId": ...} / {"momento_auth_token_secret_name": ...}'
        )
    result = rotator.rotate(RotationRequest(secret_id, "manual"), _remaining(context))
    processor.report(result)
    return result.as_dict()


def _batch(event: dict[str, Any], context: Any, processor: RecordProcessor) -> dict[str, Any]:
    records = event["Records"]
    if not isinstance(records, list) or not records:
        raise UnsupportedEvent("the event has no records")
    sources = {record.get("eventSource") for record in records if isinstance(record, dict)}
    if sources != {"aws:sqs"} or len(records) != sum(isinstance(r, dict) for r in records):
        raise UnsupportedEvent("every record must come from SQS (eventSource aws:sqs)")

    remaining = _remaining(context)

    def handle(record: SQSRecord) -> None:
        processor.handle(QueueRecord.from_lambda(record.raw_event), remaining)

    batch = SqsFifoPartialProcessor(skip_group_on_error=True)
    # NOTE: a batch whose every record failed is reported item by item, not raised, so the
    # failures are visible in the response and Lambda's poller retries each one.
    batch.raise_on_entire_batch_failure = False
    return dict(
        process_partial_response(
            event=event, record_handler=handle, processor=batch, context=context
        )
    )


def _remaining(context: Any) -> Any:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return lambda: float("inf")
    return lambda: getter() / 1000.0
