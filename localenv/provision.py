"""Create the stack's queues on the emulator, with the stack's own settings.

The settings come from `infrastructure.config.StackConfig` (read from cdk.json), so the local
queues are the deployed ones in miniature. Tests may shorten the timings; the shape stays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infrastructure.config import StackConfig

DAY = 86_400


@dataclass(frozen=True)
class Queues:
    rotation_url: str
    rotation_arn: str
    dead_letter_url: str
    dead_letter_arn: str


def provision_queues(
    sqs: Any,
    config: StackConfig,
    prefix: str = "momento-key-rotation",
    visibility_timeout_seconds: int | None = None,
) -> Queues:
    """The FIFO rotation queue and its FIFO DLQ, redrive after `max_receive_count` receives."""
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-dlq.fifo",
        Attributes={
            "FifoQueue": "true",
            "MessageRetentionPeriod": str(config.dlq_retention_days * DAY),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    visibility = visibility_timeout_seconds or config.visibility_timeout_seconds
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": str(visibility),
            "MessageRetentionPeriod": str(config.queue_retention_days * DAY),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": config.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return Queues(queue_url, _arn(sqs, queue_url), dlq_url, dlq_arn)


def queue_depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages, as SQS approximates them."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])
