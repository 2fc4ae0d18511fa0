"""`scan`: what the scanner decides for each opted-in secret, and (without `--dry-run`) a scan.

Both run `keyrotation.scan.run_scan`, the scanner Lambda's own code, so the preview cannot drift
from what the scheduled scan does. Like the scanner, neither reads a secret value.
"""

from __future__ import annotations

import time
from typing import Any

from keyrotation.errors import AwsUnavailable
from keyrotation.scan import Decision, ScanResult, run_scan
from momento_keys import output
from momento_keys.deployment import Deployment
from momento_keys.errors import EXIT_FAILED, EXIT_OK, unreachable

HEADERS = ["NAME", "VERDICT", "ACTION", "LEFT", "WHY"]


def run(deployment: Deployment, *, dry_run: bool, as_json: bool) -> int:
    settings = deployment.settings
    secrets_client = deployment.client("secretsmanager")
    sqs = None
    if not dry_run:
        settings = settings.with_overrides(rotation_queue_url=deployment.rotation_queue_url())
        sqs = deployment.client("sqs")
    try:
        result = run_scan(secrets_client, sqs, settings, time.time(), dry_run=dry_run)
    except AwsUnavailable as error:
        if sqs is not None and error.secret_id == settings.rotation_queue_url:
            raise unreachable(error.secret_id, error, sqs) from None
        raise unreachable(f"secrets tagged {settings.tag_key}", error, secrets_client) from None

    decisions = sorted(result.decisions, key=lambda decision: decision.state.name)
    if as_json:
        output.print_json(
            {"decisions": [_as_dict(d, dry_run) for d in decisions], **result.summary.as_dict()}
        )
    elif decisions:
        output.print_table(HEADERS, [_row(d, dry_run) for d in decisions])
    output.summary(_summary_line(result, dry_run, settings.tag_key), as_json=as_json)
    return EXIT_FAILED if result.unsent else EXIT_OK


def _action(decision: Decision, dry_run: bool) -> str:
    if not decision.enqueue:
        return "-"
    return "would enqueue" if dry_run else "enqueued"


def _row(decision: Decision, dry_run: bool) -> list[str]:
    return [
        decision.state.name,
        decision.verdict.value,
        _action(decision, dry_run),
        output.time_left(decision.valid_until, decision.seconds_left),
        decision.why,
    ]


def _as_dict(decision: Decision, dry_run: bool) -> dict[str, Any]:
    return {
        "name": decision.state.name,
        "arn": decision.state.arn,
        "verdict": decision.verdict.value,
        "enqueue": decision.enqueue,
        "why": decision.why,
        "validUntil": decision.valid_until,
        "secondsLeft": decision.seconds_left,
        "nearExpiry": decision.near_expiry,
    }


def _summary_line(result: ScanResult, dry_run: bool, tag_key: str) -> str:
    counts = result.summary.as_dict()
    if not counts["scanned"]:
        return f"no secrets carry the tag {tag_key}; nothing to enqueue"
    wanted = sum(decision.enqueue for decision in result.decisions)
    reasons = f"{counts['due']} due, {counts['to_inspect']} to inspect or resume"
    if dry_run:
        return (
            f"dry run: scanned {output.count(counts['scanned'], 'secret')}, would enqueue "
            f"{wanted} ({reasons}); "
            "nothing was sent"
        )
    scanned = output.count(counts["scanned"], "secret")
    line = f"scanned {scanned}, enqueued {counts['enqueued']} ({reasons})"
    if result.unsent:
        line += f"; {len(result.unsent)} could not be sent: the next scan tries them again"
    return line
