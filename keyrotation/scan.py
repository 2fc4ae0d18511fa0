"""The scan: which opted-in secrets need the rotator, decided from `ListSecrets` alone.

The scanner holds no permission to read secret values. Where the rotator's expiry record names
the version that holds AWSCURRENT, the expiry is known without reading anything; otherwise the
secret is sent to the rotator to inspect.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrotation import state_tags
from keyrotation.due import Urgency, assess
from keyrotation.errors import AwsUnavailable
from keyrotation.key_format import REFRESHABLE_FORMATS
from keyrotation.messages import RotationRequest
from keyrotation.secrets import SecretState, list_opted_in_secrets
from keyrotation.settings import Settings

SEND_BATCH = 10


class Verdict(StrEnum):
    OK = "ok"
    DUE = "due"
    INSPECT = "inspect"
    RESUME = "resume"
    NOT_REFRESHABLE = "not-refreshable"
    EXPIRED = "expired"
    FAILING = "failing"


ENQUEUED_VERDICTS = frozenset({Verdict.DUE, Verdict.INSPECT, Verdict.RESUME})


@dataclass(frozen=True)
class Decision:
    state: SecretState
    verdict: Verdict
    why: str
    valid_until: int | None = None
    seconds_left: int | None = None
    near_expiry: bool = False
    overdue: bool = False

    @property
    def enqueue(self) -> bool:
        return self.verdict in ENQUEUED_VERDICTS

    def request(self, enqueued_at: str) -> RotationRequest:
        return RotationRequest(
            secret_id=self.state.arn,
            reason="inspect" if self.verdict is Verdict.INSPECT else self.verdict.value,
            secret_name=self.state.name,
            current_version_id=self.state.current_version_id,
            valid_until=self.valid_until,
            enqueued_at=enqueued_at,
        )


def decide(state: SecretState, settings: Settings, now: float) -> Decision:
    """The verdict on one listed secret, from its tags and version stages only.

    An expired key is reported as expired even when its last rotation failed, so the
    `SecretsExpired` alarm fires for it; a key that is due with less than the minimum refresh
    window left is marked `overdue`, whatever the reason it has not been rotated.
    """
    current = state.current_version_id
    if current is None:
        return Decision(state, Verdict.INSPECT, "no AWSCURRENT version")
    pending = state.pending_version_id
    if pending is not None and pending != current:
        return Decision(state, Verdict.RESUME, "an AWSPENDING version awaits promotion")

    record = state_tags.parse_expiry(state.tags.get(state_tags.EXPIRY_TAG))
    if record is not None and record.version_id != current:
        record = None
    assessment = None
    facts: dict[str, Any] = {}
    if record is not None:
        assessment = assess(record.valid_until, record.lifetime_seconds, settings, now)
        facts = {
            "valid_until": record.valid_until,
            "seconds_left": assessment.seconds_left,
            "near_expiry": assessment.needs_refresh,
            # Unrefreshable keys have an alarm of their own.
            "overdue": assessment.overdue and record.key_format in REFRESHABLE_FORMATS,
        }
        if assessment.urgency is Urgency.EXPIRED:
            return Decision(state, Verdict.EXPIRED, "the key has expired", **facts)

    failure = state_tags.parse_failure(state.tags.get(state_tags.FAILURE_TAG))
    if failure is not None and failure.version_id == current:
        return Decision(state, Verdict.FAILING, f"last rotation failed: {failure.reason}", **facts)
    if record is None or assessment is None:
        return Decision(state, Verdict.INSPECT, "no expiry record for the current version")

    if record.key_format not in REFRESHABLE_FORMATS:
        why = f"a {record.key_format} key cannot be refreshed"
        return Decision(state, Verdict.NOT_REFRESHABLE, why, **facts)
    if assessment.urgency is Urgency.DUE:
        hours = (assessment.seconds_left or 0) // 3600
        return Decision(state, Verdict.DUE, f"{hours} h left, inside the refresh window", **facts)
    return Decision(state, Verdict.OK, "not due", **facts)


@dataclass
class ScanSummary:
    scanned: int = 0
    enqueued: int = 0
    send_failures: int = 0
    overdue: int = 0
    verdicts: Counter[str] | None = None

    def as_dict(self) -> dict[str, int]:
        counts = self.verdicts or Counter()
        return {
            "scanned": self.scanned,
            "due": counts[Verdict.DUE],
            "to_inspect": counts[Verdict.INSPECT] + counts[Verdict.RESUME],
            "not_refreshable": counts[Verdict.NOT_REFRESHABLE],
            "expired": counts[Verdict.EXPIRED],
            "failing": counts[Verdict.FAILING],
            "ok": counts[Verdict.OK],
            "overdue": self.overdue,
            "enqueued": self.enqueued,
            "send_failures": self.send_failures,
        }


def plan(states: Iterable[SecretState], settings: Settings, now: float) -> Iterator[Decision]:
    for state in states:
        yield decide(state, settings, now)


def send_requests(
    sqs: Any, queue_url: str, requests: list[RotationRequest]
) -> tuple[int, list[RotationRequest]]:
    """Send up to ten requests in one call; returns how many were accepted and those refused.

    Refused entries are sent once more (most refusals are throttles; a refusal that repeats is
    reported back). Raises `AwsUnavailable` when the whole call fails.
    """
    pending = list(requests)
    for _attempt in range(2):
        entries = [
            {
                "Id": hashlib.sha1(request.secret_id.encode(), usedforsecurity=False).hexdigest(),
                "MessageBody": request.to_body(),
                "MessageGroupId": request.group_id(),
                "MessageDeduplicationId": request.deduplication_id(),
            }
            for request in pending
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            raise AwsUnavailable(
                queue_url, f"SendMessageBatch failed: {type(error).__name__}"
            ) from None
        failed_ids = {entry["Id"] for entry in response.get("Failed", [])}
        by_id = {entry["Id"]: request for entry, request in zip(entries, pending, strict=True)}
        pending = [by_id[entry_id] for entry_id in failed_ids]
        if not pending:
            break
    return len(requests) - len(pending), pending


@dataclass
class ScanResult:
    summary: ScanSummary
    decisions: list[Decision]
    unsent: list[RotationRequest]


def run_scan(
    secrets_client: Any,
    sqs: Any | None,
    settings: Settings,
    now: float,
    dry_run: bool = False,
) -> ScanResult:
    """List, decide, and (unless `dry_run`) enqueue in batches while the listing goes on."""
    if not dry_run and (sqs is None or not settings.rotation_queue_url):
        raise ValueError("ROTATION_QUEUE_URL is not set: the scanner has nowhere to send work")
    summary = ScanSummary(verdicts=Counter())
    decisions: list[Decision] = []
    unsent: list[RotationRequest] = []
    batch: list[RotationRequest] = []
    stamp = state_tags.utc_stamp(now)

    def flush() -> None:
        if not batch:
            return
        sent, refused = send_requests(sqs, str(settings.rotation_queue_url), batch)
        summary.enqueued += sent
        summary.send_failures += len(refused)
        unsent.extend(refused)
        batch.clear()

    for decision in plan(list_opted_in_secrets(secrets_client, settings.tag_key), settings, now):
        summary.scanned += 1
        assert summary.verdicts is not None
        summary.verdicts[decision.verdict] += 1
        summary.overdue += decision.overdue
        decisions.append(decision)
        if decision.enqueue and not dry_run:
            batch.append(decision.request(stamp))
            if len(batch) == SEND_BATCH:
                flush()
    if not dry_run:
        flush()
    return ScanResult(summary, decisions, unsent)
