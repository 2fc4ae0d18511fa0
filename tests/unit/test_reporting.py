"""A scan's report: what needs a person is logged, the counts become metrics."""

from __future__ import annotations

from collections import Counter

import pytest

from keyrotation import reporting, telemetry
from keyrotation.messages import RotationRequest
from keyrotation.scan import Decision, ScanResult, ScanSummary, Verdict
from keyrotation.secrets import SecretState

ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/app-AbC123"


class Recorder:
    """Stands in for Powertools' Metrics and Logger, keeping what they were given."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.warnings: list[tuple[str, dict]] = []
        self.infos: list[tuple[str, dict]] = []

    def add_metric(self, name: str, unit: object, value: float) -> None:
        self.metrics[name] = value

    def warning(self, message: str, extra: dict) -> None:
        self.warnings.append((message, extra))

    def info(self, message: str, extra: dict) -> None:
        self.infos.append((message, extra))


def _decision(verdict: Verdict, near_expiry: bool = False, overdue: bool = False) -> Decision:
    state = SecretState(ARN, "momento/app", {}, {"v-1": ("AWSCURRENT",)})
    return Decision(state, verdict, "why", 1_800_000_000, 60, near_expiry, overdue)


def _result(decisions: list[Decision], unsent: list[RotationRequest] | None = None) -> ScanResult:
    counts = Counter(decision.verdict for decision in decisions)
    overdue = sum(decision.overdue for decision in decisions)
    summary = ScanSummary(scanned=len(decisions), enqueued=0, overdue=overdue, verdicts=counts)
    return ScanResult(summary, decisions, unsent or [])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_publish_scan_warns_about_secrets_a_person_must_fix(recorder) -> None:
    # GIVEN a scan that found an expired key, a failing one, and unrefreshable keys near/far
    decisions = [
        _decision(Verdict.EXPIRED, near_expiry=True),
        _decision(Verdict.FAILING),
        _decision(Verdict.NOT_REFRESHABLE, near_expiry=True),
        _decision(Verdict.NOT_REFRESHABLE, near_expiry=False),
        _decision(Verdict.DUE),
        _decision(Verdict.OK),
    ]

    # WHEN it is published
    reporting.publish_scan(_result(decisions), recorder, recorder)

    # THEN one warning per secret needing a person; an unrefreshable key far from expiry waits
    verdicts = [extra["verdict"] for _, extra in recorder.warnings]
    assert verdicts == ["expired", "failing", "not-refreshable"]
    assert all(extra["secret_arn"] == ARN for _, extra in recorder.warnings)


def test_publish_scan_emits_every_count_as_a_metric(recorder) -> None:
    # GIVEN a scan of six secrets with several verdicts
    decisions = [
        _decision(Verdict.DUE),
        _decision(Verdict.DUE, near_expiry=True, overdue=True),
        _decision(Verdict.INSPECT),
        _decision(Verdict.RESUME),
        _decision(Verdict.NOT_REFRESHABLE, near_expiry=True),
        _decision(Verdict.NOT_REFRESHABLE),
    ]

    # WHEN it is published
    summary = reporting.publish_scan(_result(decisions), recorder, recorder)

    # THEN every count is a metric, and the summary is logged once
    assert recorder.metrics == {
        telemetry.SECRETS_SCANNED: 6,
        telemetry.SECRETS_DUE: 2,
        telemetry.SECRETS_TO_INSPECT: 2,
        telemetry.SECRETS_EXPIRED: 0,
        telemetry.SECRETS_NOT_REFRESHABLE: 2,
        telemetry.SECRETS_NOT_REFRESHABLE_NEAR_EXPIRY: 1,
        telemetry.SECRETS_FAILING: 0,
        telemetry.SECRETS_OVERDUE: 1,
        telemetry.SCAN_SEND_FAILURES: 0,
    }
    assert summary["scanned"] == 6
    assert recorder.infos == [("scan finished", summary)]


def test_publish_scan_raises_when_some_requests_were_not_enqueued(recorder) -> None:
    # GIVEN a scan that could not enqueue one due secret
    result = _result([_decision(Verdict.DUE)], unsent=[RotationRequest(ARN, "due")])

    # WHEN it is published
    # THEN the metrics are still emitted, and the invocation fails so the failure is seen
    with pytest.raises(reporting.ScanIncomplete, match="1 secrets"):
        reporting.publish_scan(result, recorder, recorder)
    assert recorder.metrics[telemetry.SECRETS_SCANNED] == 1
