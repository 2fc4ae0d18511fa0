"""`momento-keys scan`: the scanner's own decisions, previewed or acted on."""

from __future__ import annotations

import json
from typing import Any

from cli_support import Cli, Fleet, Queues

from keyrotation.messages import parse_body


def test_scan_dry_run_shows_what_would_be_enqueued_and_sends_nothing(
    cli: Cli, fleet: Fleet, queues: Queues, aws: Any
) -> None:
    # GIVEN an ok secret, a due one and one without an expiry record
    fleet.add("ok", fleet.key(days_left=25))
    fleet.add("due", fleet.key(days_left=5))
    fleet.add("untagged", fleet.key(days_left=25), record=False)
    aws.clear_call_counts()

    # WHEN a dry run is asked for as JSON
    result = cli("scan", "--dry-run", "--json")

    # THEN the due and uninspected secrets would be enqueued, and nothing was sent or read
    decisions = {d["name"]: d for d in json.loads(result.out)["decisions"]}
    assert {name for name, d in decisions.items() if d["enqueue"]} == {"due", "untagged"}
    assert decisions["due"]["verdict"] == "due"
    assert decisions["untagged"]["verdict"] == "inspect"
    calls = aws.call_counts()
    assert "sqs.SendMessageBatch" not in calls
    assert "secretsmanager.GetSecretValue" not in calls
    assert "would enqueue 2" in result.err and "nothing was sent" in result.err
    assert result.code == 0


def test_scan_enqueues_due_secrets_on_the_rotation_queue(
    cli: Cli, fleet: Fleet, queues: Queues
) -> None:
    # GIVEN one due secret among ok ones
    due_arn = fleet.add("due", fleet.key(days_left=5))
    fleet.add("ok", fleet.key(days_left=25))

    # WHEN a real scan runs
    result = cli("scan")

    # THEN exactly the due secret is on the rotation queue, as a "due" request
    assert result.code == 0, result.err
    messages = fleet.drain(queues.rotation_url)
    requests = [parse_body(m["MessageId"], m["Body"]) for m in messages]
    assert [(r.secret_id, r.reason) for r in requests] == [(due_arn, "due")]
    assert result.out.splitlines()[-1].startswith("scanned 2 secrets, enqueued 1")


def test_scan_without_a_queue_url_names_the_option_to_pass(cli: Cli, fleet: Fleet) -> None:
    # GIVEN no queue URL in options or environment, and no deployed stack
    fleet.add("due", fleet.key(days_left=5))

    # WHEN a real scan is asked for
    result = cli("scan")

    # THEN it fails in one line that names the stack and the option
    assert result.code == 1
    assert "MomentoKeyRotation" in result.err and "--queue-url" in result.err
    assert result.err.count("\n") == 1
