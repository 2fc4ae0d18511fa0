"""Helpers for the command-line tests: constants, the in-process runner, and a fleet builder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keyrotation import state_tags
from keyrotation.key_format import KeyFormat
from keyrotation.messages import RotationRequest
from keyrotation.momento_auth import MomentoAuth
from keyrotation.processing import QueueRecord, RecordProcessor
from keyrotation.rotation import Rotator
from keyrotation.settings import Settings
from localenv.momento_standin import IssuedKey, MomentoStandIn
from momento_keys.cli import main

DAY = 86_400
LIFETIME = 30 * DAY  # refresh window: 10 days; minimum window (overdue below): 1 day
TAG_KEY = "momento-token"
KEY_FORMATS = {"v1": "v1", "legacy": "legacy-jwt", "v2": "v2", "disposable": "disposable"}


@dataclass(frozen=True)
class Queues:
    rotation_url: str
    dlq_url: str


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs `main(argv)` in-process and keeps everything it printed."""

    capsys: pytest.CaptureFixture[str]
    printed: list[str] = field(default_factory=list)

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()
        code = main(list(argv))
        captured = self.capsys.readouterr()
        self.printed += [captured.out, captured.err]
        return Result(code, captured.out, captured.err)

    def record(self, *texts: str) -> None:
        self.printed.extend(texts)


@dataclass
class Fleet:
    """Builds secrets and queue messages the way the product itself leaves them."""

    sm: Any
    sqs: Any
    standin: MomentoStandIn
    tmp_path: Path

    def key(self, *, days_left: float, form: str = "v1", lifetime: int = LIFETIME) -> IssuedKey:
        issued_at = time.time() + days_left * DAY - lifetime
        return self.standin.mint_key(lifetime, form=form, issued_at=issued_at)  # type: ignore[arg-type]

    def token_file(self, content: dict[str, Any] | str, name: str = "token.json") -> Path:
        path = self.tmp_path / name
        text = content if isinstance(content, str) else json.dumps(content)
        path.write_text(text, encoding="utf-8")
        return path

    def add(
        self,
        name: str,
        value: IssuedKey | str,
        *,
        record: bool = True,
        failure: str | None = None,
        opt_in: bool = True,
        last_rotated: str | None = None,
    ) -> str:
        """Store a secret; `record` tags the rotator's expiry record for its version."""
        text = value if isinstance(value, str) else json.dumps(value.as_token_file())
        tags = [{"Key": TAG_KEY, "Value": "true"}] if opt_in else []
        created = self.sm.create_secret(Name=name, SecretString=text, Tags=tags)
        arn, version = created["ARN"], created["VersionId"]
        state: dict[str, str] = {}
        if record and isinstance(value, IssuedKey):
            lifetime = value.lifetime_seconds
            key_format = KeyFormat(KEY_FORMATS[value.form])
            expiry = state_tags.ExpiryRecord(version, value.valid_until, lifetime, key_format)
            state[state_tags.EXPIRY_TAG] = expiry.to_tag()
        if failure:
            at = state_tags.utc_stamp(time.time())
            state[state_tags.FAILURE_TAG] = state_tags.FailureRecord(failure, version, at).to_tag()
        if last_rotated:
            state[state_tags.LAST_ROTATED_TAG] = last_rotated
        if state:
            pairs = [{"Key": key, "Value": val} for key, val in state.items()]
            self.sm.tag_resource(SecretId=arn, Tags=pairs)
        return str(arn)

    def dead_letter(
        self,
        dlq_url: str,
        arn: str,
        name: str,
        *,
        reason: str | None = "refresh-rejected",
        body: str | None = None,
    ) -> str:
        """Put a message on the DLQ as the rotator does (`reason=None`: as SQS's redrive does)."""
        request = RotationRequest(arn, "due", secret_name=name, current_version_id="v-1")
        attributes: dict[str, Any] = {}
        if reason is not None:
            values = {
                "reason": reason,
                "detail": f"{name}: Momento refused the refresh: UNAUTHENTICATED",
                "attempts": "1",
                "failedAt": state_tags.utc_stamp(time.time() - 3_600),
                "sourceMessageId": "source-1",
                "secretArn": arn,
            }
            attributes = {
                key: {"DataType": "String", "StringValue": val} for key, val in values.items()
            }
        sent = self.sqs.send_message(
            QueueUrl=dlq_url,
            MessageBody=body if body is not None else request.to_body(),
            MessageGroupId=request.group_id(),
            MessageDeduplicationId=f"{arn}-{time.monotonic_ns()}",
            MessageAttributes=attributes,
        )
        return str(sent["MessageId"])

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Receive and delete every message, group after group; returns them."""
        drained: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return drained
            for message in messages:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            drained.extend(messages)

    def process_rotation_queue(self, queues: Queues) -> list[str]:
        """Do what the rotator Lambda does with each queued message; returns the outcomes seen."""
        settings = Settings(
            tag_key=TAG_KEY,
            rotation_queue_url=queues.rotation_url,
            dead_letter_queue_url=queues.dlq_url,
            momento_endpoint_override=self.standin.address,
        )
        momento = MomentoAuth(self.standin.address, 5.0)
        rotator = Rotator(self.sm, momento, settings, sleep=lambda seconds: None)
        outcomes: list[str] = []

        def metric(name: str, value: int = 1) -> None:
            outcomes.append(name)

        processor = RecordProcessor(rotator, self.sqs, settings, metric, time.time)
        try:
            for message in self.drain(queues.rotation_url):
                attributes = message.get("Attributes", {})
                record = QueueRecord(
                    message_id=message["MessageId"],
                    body=message["Body"],
                    receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
                    group_id=attributes.get("MessageGroupId"),
                )
                processor.handle(record, lambda: 60.0)
        finally:
            momento.close()
        return outcomes
