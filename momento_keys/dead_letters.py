"""The dead-letter queue, read without consuming it, and `dlq list`.

Messages are received with a short visibility timeout and then made visible again at once
(ChangeMessageVisibility to 0), so a listing leaves the queue as it found it; if the command
dies halfway, the timeout returns them a minute later anyway.

The queue is FIFO with one message group per secret, and SQS hands out nothing more from a group
while one of its messages is in flight: a listing therefore shows the oldest dead-lettered
message of each secret, not every message. Replaying or deleting that one reveals the next.

Where the rotator dead-lettered a message itself, its attributes say why (`reason`, `detail`,
`attempts`, `failedAt`, `sourceMessageId`, `secretArn`). A message SQS moved after
`maxReceiveCount` deliveries carries none of them; it is shown as "retries exhausted (redrive)".
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from keyrotation.messages import MalformedMessage, RotationRequest, parse_body
from momento_keys import output
from momento_keys.deployment import Deployment
from momento_keys.errors import EXIT_OK

REDRIVE_REASON = "retries exhausted (redrive)"
BATCH = 10
PEEK_VISIBILITY_SECONDS = 60
# NOTE: a long poll of one second, because a short poll may sample too few SQS servers and
# answer "empty" while messages remain. It costs one second at the end of every read.
RECEIVE_WAIT_SECONDS = 1

# An ARN's secret part ends with "-" and six random characters that Secrets Manager appends.
_ARN_NAME = re.compile(r":secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


@dataclass(frozen=True)
class DeadLetter:
    """One received DLQ message. `body` is identifiers only, but is still never printed."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    sent_at: float | None
    request: RotationRequest | None
    problem: str | None

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> DeadLetter:
        message_id = str(message.get("MessageId", ""))
        body = str(message.get("Body", ""))
        attributes = {
            name: str(value.get("StringValue", ""))
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        sent = (message.get("Attributes") or {}).get("SentTimestamp")
        try:
            request, problem = parse_body(message_id, body), None
        except MalformedMessage as error:
            request, problem = None, error.detail
        return cls(
            message_id=message_id,
            receipt_handle=str(message.get("ReceiptHandle", "")),
            body=body,
            attributes=attributes,
            sent_at=int(sent) / 1000 if sent and str(sent).isdigit() else None,
            request=request,
            problem=problem,
        )

    def _attribute(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return value if value and value != "-" else None

    @property
    def secret_arn(self) -> str | None:
        return self._attribute("secretArn") or (self.request.secret_id if self.request else None)

    @property
    def secret(self) -> str:
        """The secret's name where known, else its ARN, else "?"."""
        if self.request is not None and self.request.secret_name:
            return self.request.secret_name
        arn = self.secret_arn
        return (name_from_arn(arn) or arn) if arn else "?"

    @property
    def reason(self) -> str:
        return self._attribute("reason") or REDRIVE_REASON

    @property
    def detail(self) -> str:
        return self._attribute("detail") or ""

    @property
    def attempts(self) -> str:
        return self._attribute("attempts") or "-"

    @property
    def failed_at(self) -> float | None:
        return output.parse_utc(self._attribute("failedAt")) or self.sent_at

    def matches(self, wanted: str) -> bool:
        """True when `wanted` (a secret name or ARN) names this message's secret."""
        names = {self.secret_arn, self._attribute("secretArn")}
        if self.request is not None:
            names.update({self.request.secret_id, self.request.secret_name})
        names.update({name_from_arn(name) for name in list(names) if name})
        return wanted in names

    def as_dict(self, now: float) -> dict[str, Any]:
        failed_at = self.failed_at
        return {
            "messageId": self.message_id,
            "secret": self.secret,
            "secretArn": self.secret_arn,
            "reason": self.reason,
            "detail": self.detail,
            "attempts": _count(self._attribute("attempts")),
            "failedAt": output.utc(failed_at) if failed_at else None,
            "ageSeconds": int(now - failed_at) if failed_at else None,
            "replayable": self.request is not None,
        }

    def row(self, now: float) -> list[str]:
        failed_at = self.failed_at
        age = output.duration(now - failed_at) if failed_at else "?"
        detail = self.detail if self.request else f"unreplayable: {self.problem}"
        for subject in (self.secret, self.secret_arn):
            if subject and detail.startswith(f"{subject}: "):
                detail = detail[len(subject) + 2 :]  # the SECRET column says it already
        return [self.secret, self.reason, self.attempts, age, detail]


HEADERS = ["SECRET", "REASON", "ATTEMPTS", "AGE", "DETAIL"]


def name_from_arn(arn: str) -> str | None:
    match = _ARN_NAME.search(arn)
    return match.group("name") if match else None


class DeadLetterQueue:
    """The few SQS calls made on the DLQ. Raises botocore errors unchanged."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs = sqs
        self.url = url

    def receive(self, visibility_seconds: int) -> list[DeadLetter]:
        response = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=BATCH,
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp", "MessageGroupId"],
        )
        return [DeadLetter.from_sqs(message) for message in response.get("Messages", [])]

    def release(self, letters: Iterable[DeadLetter]) -> int:
        """Make messages visible again now; returns how many SQS refused (they reappear later)."""
        pending = list(letters)
        refused = 0
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            entries = [
                {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for index, letter in enumerate(chunk)
            ]
            response = self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            refused += len(response.get("Failed", []))
        return refused

    def delete(self, letter: DeadLetter) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=letter.receipt_handle)

    def arn(self) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])


def peek(queue: DeadLetterQueue) -> list[DeadLetter]:
    """Every message SQS will hand out now (the head of each group), left in the queue."""
    seen: dict[str, DeadLetter] = {}
    try:
        while True:
            batch = queue.receive(PEEK_VISIBILITY_SECONDS)
            fresh = [letter for letter in batch if letter.message_id not in seen]
            seen.update({letter.message_id: letter for letter in batch})
            if not fresh:
                break
    finally:
        refused = queue.release(seen.values())
        if refused:
            output.warn(
                f"{refused} messages could not be made visible again: "
                f"they reappear within {PEEK_VISIBILITY_SECONDS} s"
            )
    return list(seen.values())


def run_list(deployment: Deployment, *, as_json: bool) -> int:
    queue = DeadLetterQueue(deployment.client("sqs"), deployment.dead_letter_queue_url())
    letters = sorted(peek(queue), key=lambda letter: (letter.secret, letter.failed_at or 0))
    now = time.time()
    if as_json:
        output.print_json({"messages": [letter.as_dict(now) for letter in letters]})
    elif letters:
        output.print_table(HEADERS, [letter.row(now) for letter in letters])

    if not letters:
        line = "the dead-letter queue is empty"
    else:
        secrets = len({letter.secret_arn or letter.message_id for letter in letters})
        line = (
            f"{output.count(len(letters), 'dead-lettered message')} for "
            f"{output.count(secrets, 'secret')}, left in the queue "
            "(FIFO: only the oldest message of each secret is visible)"
        )
    output.summary(line, as_json=as_json)
    return EXIT_OK


def _count(text: str | None) -> int | None:
    """A message attribute holding a count, as a number for scripts."""
    return int(text) if text and text.isdigit() else None
