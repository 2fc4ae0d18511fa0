"""Turning a scan into log lines and metrics (the handlers stay thin)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from keyrotation import telemetry
from keyrotation.scan import Decision, ScanResult, Verdict

ATTENTION = {
    Verdict.EXPIRED: "key expired: a person must store a new key",
    Verdict.NOT_REFRESHABLE: "key cannot be refreshed",
    Verdict.FAILING: "last rotation failed: see the dead-letter queue",
}


class ScanIncomplete(RuntimeError):
    """Raised when some due secrets could not be enqueued; the next scan tries them again."""


def publish_scan(result: ScanResult, metrics: Metrics, logger: Logger) -> dict[str, int]:
    """Log what needs a person, emit the counts as metrics, and return the summary."""
    for decision in result.decisions:
        if decision.verdict in ATTENTION and (
            decision.verdict is not Verdict.NOT_REFRESHABLE or decision.near_expiry
        ):
            _warn(logger, ATTENTION[decision.verdict], decision)
        elif decision.overdue:
            _warn(logger, "key overdue: inside its last day and not yet rotated", decision)

    summary = result.summary.as_dict()
    near = sum(
        1 for d in result.decisions if d.verdict is Verdict.NOT_REFRESHABLE and d.near_expiry
    )
    counts = {
        telemetry.SECRETS_SCANNED: summary["scanned"],
        telemetry.SECRETS_DUE: summary["due"],
        telemetry.SECRETS_TO_INSPECT: summary["to_inspect"],
        telemetry.SECRETS_EXPIRED: summary["expired"],
        telemetry.SECRETS_NOT_REFRESHABLE: summary["not_refreshable"],
        telemetry.SECRETS_NOT_REFRESHABLE_NEAR_EXPIRY: near,
        telemetry.SECRETS_FAILING: summary["failing"],
        telemetry.SECRETS_OVERDUE: summary["overdue"],
        telemetry.SCAN_SEND_FAILURES: summary["send_failures"],
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    logger.info("scan finished", extra=summary)
    if result.unsent:
        raise ScanIncomplete(f"{len(result.unsent)} secrets could not be enqueued")
    return summary


def _warn(logger: Logger, message: str, decision: Decision) -> None:
    logger.warning(
        message,
        extra={
            "secret_arn": decision.state.arn,
            "verdict": decision.verdict.value,
            "why": decision.why,
            "valid_until": decision.valid_until,
            "seconds_left": decision.seconds_left,
        },
    )
