"""The rotation queue's message: identifiers, a version and a reason, never secret material.

    {"v": 1, "secretArn": "...", "secretName": "...", "reason": "due",
     "currentVersionId": "...", "validUntil": 1767225600, "enqueuedAt": "2026-12-04T16:00:00Z"}

`reason` is one of `due` (the scanner knows the key is inside its refresh window), `inspect`
(the scanner cannot tell: no expiry record for the current version), `resume` (an unfinished
rotation was seen), `manual` (an operator asked) or `replay` (moved back from the DLQ).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from keyrotation.errors import PermanentError

VERSION = 1
REASONS = frozenset({"due", "inspect", "resume", "manual", "replay"})
MAX_BODY = 4_096


class MalformedMessage(PermanentError):
    """Raised when a queue message is not a rotation request this tool wrote."""

    reason = "malformed-message"


@dataclass(frozen=True)
class RotationRequest:
    secret_id: str
    reason: str
    secret_name: str | None = None
    current_version_id: str | None = None
    valid_until: int | None = None
    enqueued_at: str | None = None

    @property
    def force(self) -> bool:
        """An operator's request rotates even a key that is not yet due."""
        return self.reason == "manual"

    def to_body(self) -> str:
        body: dict[str, Any] = {"v": VERSION, "secretArn": self.secret_id, "reason": self.reason}
        optional = {
            "secretName": self.secret_name,
            "currentVersionId": self.current_version_id,
            "validUntil": self.valid_until,
            "enqueuedAt": self.enqueued_at,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return json.dumps(body, separators=(",", ":"))

    def group_id(self) -> str:
        """One FIFO message group per secret: the queue itself serializes work on a secret."""
        return hashlib.sha256(self.secret_id.encode()).hexdigest()

    def deduplication_id(self) -> str:
        material = f"{self.secret_id}\n{self.current_version_id}\n{self.reason}"
        return hashlib.sha256(material.encode()).hexdigest()


def parse_body(message_id: str, body: str) -> RotationRequest:
    """Read a message body, raising `MalformedMessage` that names the message, not its body."""
    if len(body) > MAX_BODY:
        raise MalformedMessage(message_id, "the message body is larger than a rotation request")
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedMessage(message_id, "the message body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage(message_id, "the message body is not a JSON object")
    if data.get("v") != VERSION:
        raise MalformedMessage(message_id, f"unsupported message version {data.get('v')!r}")
    secret_id, reason = data.get("secretArn"), data.get("reason")
    if not isinstance(secret_id, str) or not secret_id.startswith("arn:"):
        raise MalformedMessage(message_id, "secretArn is missing or not an ARN")
    if reason not in REASONS:
        raise MalformedMessage(message_id, "reason is missing or unknown")
    valid_until = data.get("validUntil")
    return RotationRequest(
        secret_id=secret_id,
        reason=str(reason),
        secret_name=_optional_text(data.get("secretName")),
        current_version_id=_optional_text(data.get("currentVersionId")),
        valid_until=valid_until if isinstance(valid_until, int) else None,
        enqueued_at=_optional_text(data.get("enqueuedAt")),
    )


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
