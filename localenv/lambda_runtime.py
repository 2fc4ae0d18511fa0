"""Lambda's SQS delivery, reproduced: what the event source mapping does for the rotator.

One delivery receives up to `batch_size` messages (which hides them for the queue's visibility
timeout), builds the same event Lambda builds, invokes the handler, and then applies Lambda's
rules to the answer:

- the handler raised: every message stays and reappears after its visibility timeout;
- `batchItemFailures` empty or absent: every message is deleted;
- failures named: the others are deleted, the named ones stay;
- an identifier that is not in the batch, an empty one, or a malformed answer: all stay.

SQS itself moves a message to the DLQ once it has been received `maxReceiveCount` times.
`Worker` runs deliveries in a loop in its own process, as one concurrent Lambda execution
environment; `python -m localenv.lambda_runtime` is that process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The context attributes Powertools and the rotator read."""

    function_name: str = "momento-key-rotator"
    timeout_seconds: float = 60.0
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))


@dataclass
class DeliveryReport:
    received: int = 0
    deleted: int = 0
    failed: int = 0
    handler_errors: int = 0


def deliver_once(
    sqs: Any,
    queue_url: str,
    queue_arn: str,
    handler: Handler,
    batch_size: int = 10,
    wait_seconds: int = 1,
    timeout_seconds: float = 60.0,
) -> DeliveryReport:
    """One poll and, if anything arrived, one invocation, with Lambda's deletion rules."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = response.get("Messages", [])
    report = DeliveryReport(received=len(messages))
    if not messages:
        return report

    event = {"Records": [_record(message, queue_arn) for message in messages]}
    try:
        answer = handler(event, LambdaContext(timeout_seconds=timeout_seconds))
    except Exception as error:  # Lambda's own rule: a raising handler fails the whole batch
        print(f"handler error: {type(error).__name__}: {error}", file=sys.stderr)
        report.handler_errors = 1
        report.failed = len(messages)
        return report

    failed_ids = _failed_ids(answer, {m["MessageId"] for m in messages})
    done = [m for m in messages if m["MessageId"] not in failed_ids]
    for start in range(0, len(done), 10):
        chunk = done[start : start + 10]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ],
        )
    report.deleted = len(done)
    report.failed = len(messages) - len(done)
    return report


def _failed_ids(answer: Any, batch_ids: set[str]) -> set[str]:
    """The messages to keep, by Lambda's rules for a partial batch response."""
    if answer is None or (isinstance(answer, dict) and not answer.get("batchItemFailures")):
        return set()
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not isinstance(failures, list):
        return set(batch_ids)
    named = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return set(batch_ids)
        named.add(identifier)
    return named


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1",
    }


def load_handler(dotted: str) -> Handler:
    module_name, _, attribute = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def main(argv: list[str] | None = None) -> int:
    """One execution environment: poll and invoke until SIGTERM, then finish the batch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handler", default="rotator.handler.lambda_handler")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--queue-arn", required=True)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    import boto3  # after the environment is final

    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    sqs = boto3.client("sqs")
    handler = load_handler(args.handler)
    totals = DeliveryReport()
    while not stopping:
        report = deliver_once(
            sqs, args.queue_url, args.queue_arn, handler, args.batch_size, 1, args.timeout
        )
        totals.received += report.received
        totals.deleted += report.deleted
        totals.failed += report.failed
    print(json.dumps({"worker_totals": totals.__dict__, "pid": os.getpid()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
