"""`momento-keys dlq replay`: dead-lettered rotations go back to the rotation queue, none lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_support import Cli, Fleet, Queues

from keyrotation import telemetry
from keyrotation.messages import parse_body
from localenv.aws_emulator import AwsEmulator
from momento_keys import replaying
from momento_keys.dead_letters import DeadLetter, DeadLetterQueue


def secrets_on(fleet: Fleet, url: str) -> list[str]:
    """The secret ARN of every message on a queue (drains it)."""
    return sorted(parse_body(m["MessageId"], m["Body"]).secret_id for m in fleet.drain(url))


def test_dlq_replay_of_an_empty_queue_says_so(cli: Cli, queues: Queues) -> None:
    # GIVEN an empty DLQ
    # WHEN it is replayed
    result = cli("dlq", "replay")

    # THEN nothing moves and it exits 0
    assert result.code == 0
    assert result.out.splitlines()[-1] == "the dead-letter queue is empty: nothing to replay"


def test_dlq_replay_moves_every_message_with_reason_replay_in_its_secrets_group(
    cli: Cli, fleet: Fleet, queues: Queues, sqs: Any
) -> None:
    # GIVEN two dead-lettered messages for one secret and one for another
    first = fleet.add("app/one", fleet.key(days_left=5))
    second = fleet.add("app/two", fleet.key(days_left=5))
    for arn, name in ((first, "app/one"), (first, "app/one"), (second, "app/two")):
        fleet.dead_letter(queues.dlq_url, arn, name)

    # WHEN the DLQ is replayed (the emulator has no move tasks: the command finds out)
    result = cli("dlq", "replay")

    # THEN all three are on the rotation queue as "replay" requests in the secret's group,
    # each with a fresh deduplication id, and the DLQ is empty
    assert result.code == 0, result.err
    assert "moving messages one by one" in result.out
    assert result.out.splitlines()[-1] == "replayed 3 messages to the rotation queue"
    moved = fleet.drain(queues.rotation_url)
    requests = [parse_body(m["MessageId"], m["Body"]) for m in moved]
    assert sorted(r.secret_id for r in requests) == sorted([first, first, second])
    assert {r.reason for r in requests} == {"replay"}
    for message, request in zip(moved, requests, strict=True):
        assert message["Attributes"]["MessageGroupId"] == request.group_id()
        assert request.secret_name in ("app/one", "app/two")
    assert len({m["Attributes"]["MessageDeduplicationId"] for m in moved}) == 3
    assert fleet.drain(queues.dlq_url) == []


def test_dlq_replay_with_a_secret_filter_leaves_the_others_untouched(
    cli: Cli, fleet: Fleet, queues: Queues
) -> None:
    # GIVEN dead-lettered messages for three secrets
    arns = {name: fleet.add(name, fleet.key(days_left=5)) for name in ("a", "b", "c")}
    ids = {name: fleet.dead_letter(queues.dlq_url, arn, name) for name, arn in arns.items()}

    # WHEN only "b" is replayed, named by its ARN
    result = cli("dlq", "replay", "--secret", arns["b"])

    # THEN only b moved; a and c are still in the DLQ, visible, same ids, reasons and bodies
    assert result.code == 0, result.err
    assert "left in the DLQ: 2 of other secrets" in result.out
    assert secrets_on(fleet, queues.rotation_url) == [arns["b"]]
    remaining = fleet.drain(queues.dlq_url)
    assert sorted(m["MessageId"] for m in remaining) == sorted([ids["a"], ids["c"]])
    for message in remaining:
        assert message["MessageAttributes"]["reason"]["StringValue"] == "refresh-rejected"
        assert parse_body(message["MessageId"], message["Body"]).reason == "due"


def test_dlq_replay_with_a_secret_name_matches_the_arn_attribute(
    cli: Cli, fleet: Fleet, queues: Queues
) -> None:
    # GIVEN a message whose body names the secret by ARN only
    arn = fleet.add("plain-name", fleet.key(days_left=5))
    body = json.dumps({"v": 1, "secretArn": arn, "reason": "due"})
    fleet.dead_letter(queues.dlq_url, arn, "plain-name", body=body)

    # WHEN it is replayed by name
    result = cli("dlq", "replay", "--secret", "plain-name")

    # THEN the name is matched against the ARN
    assert result.code == 0, result.err
    assert secrets_on(fleet, queues.rotation_url) == [arn]


def test_dlq_replay_dry_run_shows_what_would_move_and_moves_nothing(
    cli: Cli, fleet: Fleet, queues: Queues
) -> None:
    # GIVEN two dead-lettered secrets
    for name in ("x", "y"):
        fleet.dead_letter(queues.dlq_url, fleet.add(name, fleet.key(days_left=5)), name)

    # WHEN a dry run of the replay is asked for
    result = cli("dlq", "replay", "--dry-run")

    # THEN both are shown, nothing moved, and both are still in the DLQ
    assert result.code == 0
    assert "dry run: would replay 2 messages; nothing moved" in result.out
    assert "refresh-rejected" in result.out
    assert secrets_on(fleet, queues.rotation_url) == []
    assert len(fleet.drain(queues.dlq_url)) == 2


def test_dlq_replay_max_bounds_how_many_move(cli: Cli, fleet: Fleet, queues: Queues) -> None:
    # GIVEN five dead-lettered secrets
    for index in range(5):
        name = f"s{index}"
        fleet.dead_letter(queues.dlq_url, fleet.add(name, fleet.key(days_left=5)), name)

    # WHEN at most two are replayed
    result = cli("dlq", "replay", "--max", "2")

    # THEN two moved and three stay
    assert result.code == 0, result.err
    assert len(secrets_on(fleet, queues.rotation_url)) == 2
    assert len(fleet.drain(queues.dlq_url)) == 3


def test_dlq_replay_leaves_an_unreplayable_message_in_the_dlq(
    cli: Cli, fleet: Fleet, queues: Queues
) -> None:
    # GIVEN one good message and one whose body is not a rotation request
    arn = fleet.add("good", fleet.key(days_left=5))
    fleet.dead_letter(queues.dlq_url, arn, "good")
    junk = fleet.dead_letter(queues.dlq_url, "arn:junk", "junk", body="not json")

    # WHEN the DLQ is replayed
    result = cli("dlq", "replay")

    # THEN the good one moved, the junk stays and is reported, and the exit code says so
    assert result.code == 1
    assert f"message {junk} stays in the DLQ: the message body is not JSON" in result.err
    assert secrets_on(fleet, queues.rotation_url) == [arn]
    assert [m["MessageId"] for m in fleet.drain(queues.dlq_url)] == [junk]


def assert_nothing_lost(fleet: Fleet, queues: Queues, arns: list[str], duplicated: int) -> None:
    """Every secret is in the DLQ or on the rotation queue; `duplicated` of them on both."""
    on_queue = secrets_on(fleet, queues.rotation_url)
    in_dlq = secrets_on(fleet, queues.dlq_url)
    assert set(on_queue) | set(in_dlq) == set(arns)
    assert len(set(on_queue) & set(in_dlq)) == duplicated


@pytest.mark.parametrize(
    ("action", "where", "duplicated"),
    [
        pytest.param("SendMessage", "the message stays in the DLQ", 0, id="send-fails"),
        pytest.param("DeleteMessage", "it is on both now", 1, id="delete-fails"),
    ],
)
def test_dlq_replay_stopped_by_a_failed_call_loses_no_message(
    cli: Cli,
    fleet: Fleet,
    queues: Queues,
    aws: AwsEmulator,
    action: str,
    where: str,
    duplicated: int,
) -> None:
    # GIVEN four dead-lettered secrets, and SQS refusing the replay's first send or delete
    arns = [fleet.add(f"k{i}", fleet.key(days_left=5)) for i in range(4)]
    for index, arn in enumerate(arns):
        fleet.dead_letter(queues.dlq_url, arn, f"k{index}")
    aws.inject_fault("sqs", action, "AccessDenied", status=403)

    # WHEN the DLQ is replayed
    result = cli("dlq", "replay")

    # THEN the command stops with one line saying where the message is, and every secret is
    # in the DLQ (visible again at once) or on the rotation queue
    assert result.code == 1
    assert where in result.err and result.err.count("\n") == 1
    assert "stopped after replaying 0 messages" in result.out
    assert_nothing_lost(fleet, queues, arns, duplicated)


def test_dlq_replay_interrupted_between_send_and_delete_loses_no_message(
    cli: Cli, fleet: Fleet, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN four dead-lettered secrets, and an operator pressing Ctrl-C during the second
    # message, after it was sent and before it was deleted
    arns = [fleet.add(f"k{i}", fleet.key(days_left=5)) for i in range(4)]
    for index, arn in enumerate(arns):
        fleet.dead_letter(queues.dlq_url, arn, f"k{index}")
    deletes = []
    real_delete = DeadLetterQueue.delete

    def delete_then_interrupt(queue: DeadLetterQueue, letter: DeadLetter) -> None:
        deletes.append(letter.message_id)
        if len(deletes) == 2:
            raise KeyboardInterrupt
        real_delete(queue, letter)

    monkeypatch.setattr(DeadLetterQueue, "delete", delete_then_interrupt)

    # WHEN the DLQ is replayed
    result = cli("dlq", "replay")

    # THEN it reports the interruption, one secret moved, one is on both, two stayed
    assert result.code == 130
    assert result.err == "momento-keys: error: interrupted\n"
    assert_nothing_lost(fleet, queues, arns, duplicated=1)


def test_dlq_replay_of_work_already_done_is_harmless(
    cli: Cli, fleet: Fleet, queues: Queues, sm: Any
) -> None:
    # GIVEN a secret that has been rotated since it was dead-lettered (it is not due now)
    arn = fleet.add("done", fleet.key(days_left=25))
    fleet.dead_letter(queues.dlq_url, arn, "done")
    version_before = sm.describe_secret(SecretId="done")["VersionIdsToStages"]

    # WHEN it is replayed and the rotator handles the message
    result = cli("dlq", "replay", "--secret", "done")
    outcomes = fleet.process_rotation_queue(queues)

    # THEN the rotator answers "not due", changes nothing and dead-letters nothing
    assert result.code == 0, result.err
    assert outcomes == [telemetry.ROTATION_NOT_DUE]
    assert sm.describe_secret(SecretId="done")["VersionIdsToStages"] == version_before
    assert fleet.drain(queues.dlq_url) == []


def test_dlq_replay_moves_only_what_was_dead_lettered_before_it_began(
    cli: Cli, fleet: Fleet, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one dead-lettered rotation whose cause is not fixed: a rotator that fails it again
    # the moment it is replayed, sending it straight back to the DLQ
    arn = fleet.add("app/still-broken", fleet.key(days_left=5))
    fleet.dead_letter(queues.dlq_url, arn, "app/still-broken")
    original_move = replaying._move
    failed_again: list[str] = []

    def move_and_fail_again(*args: Any) -> None:
        original_move(*args)
        if len(failed_again) >= 20:
            raise AssertionError("the replay keeps moving what it just sent back")
        failed_again.append(fleet.dead_letter(queues.dlq_url, arn, "app/still-broken"))

    monkeypatch.setattr(replaying, "_move", move_and_fail_again)

    # WHEN the DLQ is replayed
    result = cli("dlq", "replay", "--secret", "app/still-broken")

    # THEN the one message moves once; the one that came back stays for after the fix
    assert result.code == 0, result.err
    assert len(failed_again) == 1
    assert "replayed 1 message of app/still-broken" in result.out
    assert "1 dead-lettered again during the replay" in result.out
    assert [m["MessageId"] for m in fleet.drain(queues.dlq_url)] == failed_again
