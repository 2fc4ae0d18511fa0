"""`dlq replay`: move dead-lettered rotation requests back to the rotation queue.

Replaying before the cause is fixed only refills the DLQ: fix first, then replay.

Two ways to move them:

- **A message move task** (`StartMessageMoveTask`), used for an unfiltered, unbounded replay.
  SQS moves the messages itself, as they are. One task may run per queue; if one is running,
  the command says so and stops.
- **One by one**, used with `--secret`, `--max` or `--dry-run`, and wherever the endpoint lacks
  move tasks (the local emulator does; that is found out by trying). Each message is sent to the
  rotation queue *before* it is deleted from the DLQ, so a crash loses nothing: at worst the
  message is on both queues, and the rotator answers the second copy with "not due". The new
  body carries `reason: "replay"` and a fresh deduplication id (FIFO deduplication would drop
  a repeat), in the secret's own message group. A body that is not a rotation request stays in
  the DLQ and is reported as unreplayable; so do messages of other secrets under `--secret`,
  which are made visible again untouched.

Because of FIFO group locking (see `dead_letters`), a dry run sees only the oldest message of
each secret.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrotation.state_tags import utc_stamp
from momento_keys import output
from momento_keys.dead_letters import HEADERS, DeadLetter, DeadLetterQueue
from momento_keys.deployment import Deployment
from momento_keys.errors import EXIT_FAILED, EXIT_OK, CommandFailed, describe_aws_error, error_code

REPLAY_VISIBILITY_SECONDS = 120
MOVE_TASK_POLL_SECONDS = 2.0
FINAL_TASK_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
# What an endpoint without message move tasks answers (moto: HTTP 500 with code "500").
UNSUPPORTED_CODES = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "InvalidAction",
        "NotImplemented",
        "UnknownOperationException",
    }
)


class MoveTasksUnsupported(Exception):
    """Raised when the SQS endpoint does not implement message move tasks."""


class ReplayStopped(Exception):
    """Raised when a move failed halfway; says where the message is now."""


@dataclass
class Tally:
    """What a one-by-one replay did; `moved` holds secrets in the order they moved."""

    moved: list[str] = field(default_factory=list)
    would_move: list[DeadLetter] = field(default_factory=list)
    other_secrets: int = 0
    unreplayable: list[DeadLetter] = field(default_factory=list)
    arrived: int = 0
    batches: int = 0

    def progress_line(self, dry_run: bool) -> str:
        verb = f"would move {len(self.would_move)}" if dry_run else f"moved {len(self.moved)}"
        return (
            f"batch {self.batches}: {verb}, kept {self.other_secrets} of other secrets, "
            f"{len(self.unreplayable)} unreplayable"
        )


def run(
    deployment: Deployment,
    *,
    secret: str | None,
    limit: int | None,
    dry_run: bool,
    poll_seconds: float = MOVE_TASK_POLL_SECONDS,
) -> int:
    sqs = deployment.client("sqs")
    dlq = DeadLetterQueue(sqs, deployment.dead_letter_queue_url())
    queue_url = deployment.rotation_queue_url()

    if secret is None and limit is None and not dry_run:
        try:
            source, destination = dlq.arn(), _queue_arn(sqs, queue_url)
            return move_with_task(
                deployment.client("sqs", retries=False), sqs, source, destination, poll_seconds
            )
        except MoveTasksUnsupported:
            output.progress("this endpoint has no message move tasks: moving messages one by one")

    tally = Tally()
    try:
        move_one_by_one(dlq, sqs, queue_url, tally, secret=secret, limit=limit, dry_run=dry_run)
    except ReplayStopped as stopped:
        output.summary(_summary_line(tally, secret, dry_run, stopped=True))
        raise CommandFailed(str(stopped)) from None

    if dry_run and tally.would_move:
        now = time.time()
        output.print_table(HEADERS, [letter.row(now) for letter in tally.would_move])
    for letter in tally.unreplayable:
        output.warn(f"message {letter.message_id} stays in the DLQ: {letter.problem}")
    output.summary(_summary_line(tally, secret, dry_run))
    # Asked to replay everything and could not: say so in the exit code too.
    return EXIT_FAILED if tally.unreplayable and secret is None else EXIT_OK


def move_with_task(
    probe: Any,
    sqs: Any,
    source_arn: str,
    destination_arn: str,
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Start a move task and report its progress until it ends.

    Raises `MoveTasksUnsupported` when the endpoint lacks the API, and `CommandFailed` when a
    task is already running on the DLQ or the task fails.
    """
    running = [task for task in _tasks(probe, source_arn) if task.get("Status") == "RUNNING"]
    if running:
        raise CommandFailed(
            f"a message move task is already running on {source_arn} "
            f"({_task_progress(running[0])}): wait for it, or cancel it with "
            "`aws sqs cancel-message-move-task`"
        )
    try:
        handle = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    except ClientError as error:
        if _unsupported(error):
            raise MoveTasksUnsupported() from None
        raise
    output.progress(f"started message move task {handle.get('TaskHandle', '?')}")

    while True:
        sleep(poll_seconds)
        tasks = _tasks(sqs, source_arn)
        task = tasks[0] if tasks else {"Status": "COMPLETED"}
        status = str(task.get("Status", "?"))
        output.progress(f"move task {status.lower()}: {_task_progress(task)}")
        if status in FINAL_TASK_STATES:
            break

    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0) or 0)
    if status != "COMPLETED":
        why = task.get("FailureReason") or status.lower()
        output.summary(
            f"move task ended {status.lower()} after moving about {output.count(moved, 'message')}"
        )
        raise CommandFailed(f"{source_arn}: the message move task did not complete: {why}")
    output.summary(
        f"replayed about {output.count(moved, 'message')} to the rotation queue with a move task"
    )
    return EXIT_OK


def move_one_by_one(
    dlq: DeadLetterQueue,
    sqs: Any,
    queue_url: str,
    tally: Tally,
    *,
    secret: str | None,
    limit: int | None,
    dry_run: bool,
) -> None:
    """Receive, pick, send, delete, batch after batch, until the DLQ has nothing more to give.

    Messages that stay are held invisible until the end, so no batch hands them out again,
    and are then made visible at once, also when the replay stops early (an error, Ctrl-C).
    Only messages already dead-lettered when the replay began are moved: a replayed rotation
    that fails again while the replay runs comes back as a new message, and moving it too would
    loop for as long as the cause lasts. Raises `ReplayStopped` after a failed send or delete.
    """
    started = time.time()
    handled: set[str] = set()
    held: dict[str, DeadLetter] = {}
    try:
        while limit is None or _count(tally, dry_run) < limit:
            batch = dlq.receive(REPLAY_VISIBILITY_SECONDS)
            if not any(letter.message_id not in handled for letter in batch):
                break
            tally.batches += 1
            # Held until moved: whatever happens below, the rest of the batch is released.
            held.update({letter.message_id: letter for letter in batch})
            for letter in batch:
                if letter.sent_at is not None and letter.sent_at > started:
                    if letter.message_id not in handled:
                        handled.add(letter.message_id)
                        tally.arrived += 1
                    continue
                if _keep(letter, handled, tally, secret, limit, dry_run):
                    continue
                _move(dlq, sqs, queue_url, letter)
                del held[letter.message_id]
                tally.moved.append(letter.secret)
            output.progress(tally.progress_line(dry_run))
    finally:
        refused = dlq.release(held.values())
        if refused:
            output.warn(f"{refused} messages stay invisible for {REPLAY_VISIBILITY_SECONDS} s")


def _keep(
    letter: DeadLetter,
    handled: set[str],
    tally: Tally,
    secret: str | None,
    limit: int | None,
    dry_run: bool,
) -> bool:
    """Decide one message: True to leave it in the DLQ, False to move it now."""
    if letter.message_id in handled:
        return True
    if limit is not None and _count(tally, dry_run) >= limit:
        return True  # not counted as handled: a later run may move it
    handled.add(letter.message_id)
    if letter.request is None:
        tally.unreplayable.append(letter)
        return True
    if secret is not None and not letter.matches(secret):
        tally.other_secrets += 1
        return True
    if dry_run:
        tally.would_move.append(letter)
        return True
    return False


def _move(dlq: DeadLetterQueue, sqs: Any, queue_url: str, letter: DeadLetter) -> None:
    """Send first, delete second: a failure between the two leaves a duplicate, never a loss."""
    assert letter.request is not None
    request = replace(letter.request, reason="replay", enqueued_at=utc_stamp(time.time()))
    try:
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=request.to_body(),
            MessageGroupId=request.group_id(),
            MessageDeduplicationId=uuid.uuid4().hex,
        )
    except (ClientError, BotoCoreError) as error:
        raise ReplayStopped(
            f"{letter.secret}: could not send to the rotation queue ({describe_aws_error(error)}); "
            "the message stays in the DLQ"
        ) from None
    try:
        dlq.delete(letter)
    except (ClientError, BotoCoreError) as error:
        raise ReplayStopped(
            f"{letter.secret}: sent to the rotation queue but not deleted from the DLQ "
            f"({describe_aws_error(error)}); it is on both now, and the rotator will answer "
            "the second copy with not-due"
        ) from None


def _count(tally: Tally, dry_run: bool) -> int:
    return len(tally.would_move) if dry_run else len(tally.moved)


def _tasks(client: Any, source_arn: str) -> list[dict[str, Any]]:
    try:
        response = client.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)
    except ClientError as error:
        if _unsupported(error):
            raise MoveTasksUnsupported() from None
        raise
    return list(response.get("Results", []))


def _unsupported(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(error) in UNSUPPORTED_CODES or status in (500, 501)


def _task_progress(task: dict[str, Any]) -> str:
    moved = task.get("ApproximateNumberOfMessagesMoved", 0)
    total = task.get("ApproximateNumberOfMessagesToMove")
    return f"{moved} of {total} moved" if total is not None else f"{moved} moved"


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _summary_line(tally: Tally, secret: str | None, dry_run: bool, stopped: bool = False) -> str:
    scope = f" of {secret}" if secret else ""
    moved = output.count(len(tally.would_move if dry_run else tally.moved), "message")
    if dry_run:
        head = f"dry run: would replay {moved}{scope}; nothing moved"
    elif stopped:
        head = f"stopped after replaying {moved}{scope}"
    elif not (tally.moved or tally.other_secrets or tally.unreplayable or tally.arrived):
        return "the dead-letter queue is empty: nothing to replay"
    else:
        head = f"replayed {moved}{scope} to the rotation queue"
    left = []
    if tally.other_secrets:
        left.append(f"{tally.other_secrets} of other secrets")
    if tally.unreplayable:
        left.append(f"{len(tally.unreplayable)} unreplayable")
    if tally.arrived:
        left.append(f"{tally.arrived} dead-lettered again during the replay (fix the cause first)")
    return head + (f"; left in the DLQ: {', '.join(left)}" if left else "")
