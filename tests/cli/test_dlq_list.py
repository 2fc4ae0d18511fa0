"""`momento-keys dlq list`: what was dead-lettered and why, leaving the queue as it was."""

from __future__ import annotations

import json
from typing import Any

from cli_support import Cli, Fleet, Queues


def visible_count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_dlq_list_of_an_empty_queue_says_so(cli: Cli, queues: Queues) -> None:
    # GIVEN an empty DLQ
    # WHEN it is listed
    result = cli("dlq", "list")

    # THEN it says it is empty and exits 0
    assert result.code == 0
    assert result.out == "the dead-letter queue is empty\n"


def test_dlq_list_shows_reason_detail_attempts_and_age_without_consuming(
    cli: Cli, fleet: Fleet, queues: Queues, sqs: Any
) -> None:
    # GIVEN two secrets dead-lettered by the rotator
    first = fleet.add("app/one", fleet.key(days_left=5))
    second = fleet.add("app/two", fleet.key(days_left=5))
    fleet.dead_letter(queues.dlq_url, first, "app/one", reason="refresh-rejected")
    fleet.dead_letter(queues.dlq_url, second, "app/two", reason="verification-failed")

    # WHEN the DLQ is listed, as a table and then as JSON
    table = cli("dlq", "list")
    listed = cli("dlq", "list", "--json")

    # THEN both show their reason, detail, attempts and age, and both are still visible
    assert table.code == 0 and listed.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["SECRET", "REASON", "ATTEMPTS", "AGE", "DETAIL"]
    assert lines[1].split()[:4] == ["app/one", "refresh-rejected", "1", "1h"]
    assert lines[1].endswith("  Momento refused the refresh: UNAUTHENTICATED")
    assert lines[2].split()[:2] == ["app/two", "verification-failed"]
    assert "only the oldest message of each secret is visible" in lines[-1]
    messages = json.loads(listed.out)["messages"]
    assert [(m["secret"], m["secretArn"], m["replayable"]) for m in messages] == [
        ("app/one", first, True),
        ("app/two", second, True),
    ]
    assert 3_500 < messages[0]["ageSeconds"] < 3_700
    assert visible_count(sqs, queues.dlq_url) == 2


def test_dlq_list_shows_redriven_messages_as_retries_exhausted(
    cli: Cli, fleet: Fleet, queues: Queues, sqs: Any
) -> None:
    # GIVEN a rotation request that SQS moved to the DLQ after five receives
    arn = fleet.add("app/redriven", fleet.key(days_left=5))
    fleet.dead_letter(queues.rotation_url, arn, "app/redriven", reason=None)
    for _ in range(6):  # the sixth receive moves it
        sqs.receive_message(QueueUrl=queues.rotation_url, VisibilityTimeout=0)

    # WHEN the DLQ is listed
    result = cli("dlq", "list", "--json")

    # THEN it is shown with the redrive reason and the secret from its body
    [message] = json.loads(result.out)["messages"]
    assert message["reason"] == "retries exhausted (redrive)"
    assert message["secret"] == "app/redriven" and message["secretArn"] == arn


def test_dlq_list_marks_a_message_that_is_not_a_rotation_request(
    cli: Cli, fleet: Fleet, queues: Queues
) -> None:
    # GIVEN a DLQ message whose body is not a rotation request
    fleet.dead_letter(queues.dlq_url, "arn:x", "junk", reason="malformed-message", body="{}")

    # WHEN the DLQ is listed
    result = cli("dlq", "list")

    # THEN it is listed as unreplayable, with the problem, and the body is not shown
    assert "unreplayable: unsupported message version" in result.out
    assert "{}" not in result.out
