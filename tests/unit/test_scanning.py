"""The scan: which opted-in secrets go to the rotator, decided from the listing alone."""

from __future__ import annotations

import dataclasses

import pytest

from keyrotation import messages, scan, state_tags
from keyrotation.errors import AwsUnavailable
from keyrotation.key_format import KeyFormat
from keyrotation.messages import RotationRequest
from keyrotation.scan import Verdict
from keyrotation.secrets import SecretState
from keyrotation.settings import DAY, Settings

NOW = 1_800_000_000
ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/app-AbC123"
OPT_IN = {"momento-token": "true"}


def _expiry(version: str, valid_until: int, key_format: KeyFormat = KeyFormat.V1) -> str:
    return state_tags.ExpiryRecord(version, valid_until, 30 * DAY, key_format).to_tag()


def _failure(version: str, reason: str = "refresh-rejected") -> str:
    return state_tags.FailureRecord(reason, version, "2027-01-14T08:00:00Z").to_tag()


def _state(stages: dict[str, tuple[str, ...]], **tags: str) -> SecretState:
    keyed = {getattr(state_tags, name.upper() + "_TAG"): value for name, value in tags.items()}
    return SecretState(ARN, "momento/app", {**OPT_IN, **keyed}, stages)


CURRENT_ONLY = {"v-1": ("AWSCURRENT",), "v-0": ("AWSPREVIOUS",)}

DECISIONS = {
    "no-current-version": (_state({}), Verdict.INSPECT),
    "no-expiry-record": (_state(CURRENT_ONLY), Verdict.INSPECT),
    "record-names-another-version": (
        _state(CURRENT_ONLY, expiry=_expiry("v-0", NOW + 20 * DAY)),
        Verdict.INSPECT,
    ),
    "record-unreadable": (_state(CURRENT_ONLY, expiry="valid_until=tomorrow"), Verdict.INSPECT),
    "pending-on-another-version": (
        _state({"v-1": ("AWSCURRENT",), "v-2": ("AWSPENDING",)}),
        Verdict.RESUME,
    ),
    "failure-names-current-version": (
        _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + DAY), failure=_failure("v-1")),
        Verdict.FAILING,
    ),
    "failure-names-an-old-version": (
        _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + 20 * DAY), failure=_failure("v-0")),
        Verdict.OK,
    ),
    "expired": (_state(CURRENT_ONLY, expiry=_expiry("v-1", NOW - 1)), Verdict.EXPIRED),
    "due": (_state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + 2 * DAY)), Verdict.DUE),
    "ok": (_state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + 20 * DAY)), Verdict.OK),
    "never-expires": (_state(CURRENT_ONLY, expiry=_expiry("v-1", 0)), Verdict.OK),
    "legacy-jwt-due": (
        _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + DAY, KeyFormat.LEGACY_JWT)),
        Verdict.DUE,
    ),
}


@pytest.mark.parametrize(("state", "verdict"), DECISIONS.values(), ids=DECISIONS.keys())
def test_decide_gives_each_listed_secret_its_verdict(state: SecretState, verdict: Verdict) -> None:
    # GIVEN a listed secret's stages and tags
    # WHEN the scan decides on it
    decision = scan.decide(state, Settings(), NOW)

    # THEN it gets the expected verdict, and only due/inspect/resume are enqueued
    assert decision.verdict is verdict
    assert decision.enqueue is (verdict in {Verdict.DUE, Verdict.INSPECT, Verdict.RESUME})


def test_decide_does_not_resume_when_pending_sits_on_the_current_version() -> None:
    # GIVEN a promoted rotation whose AWSPENDING label was not yet removed
    state = _state({"v-1": ("AWSCURRENT", "AWSPENDING")}, expiry=_expiry("v-1", NOW + 20 * DAY))

    # THEN there is nothing to resume: the expiry record decides
    assert scan.decide(state, Settings(), NOW).verdict is Verdict.OK


@pytest.mark.parametrize("key_format", [KeyFormat.V2, KeyFormat.DISPOSABLE])
@pytest.mark.parametrize(
    ("valid_until", "near_expiry"),
    [(NOW + DAY, True), (NOW + 20 * DAY, False)],
    ids=["inside-the-window", "far-from-expiry"],
)
def test_decide_flags_keys_that_cannot_be_refreshed_and_says_when_they_near_expiry(
    key_format: KeyFormat, valid_until: int, near_expiry: bool
) -> None:
    # GIVEN a recorded key of a format with no refresh protocol
    state = _state(CURRENT_ONLY, expiry=_expiry("v-1", valid_until, key_format))

    # WHEN the scan decides on it
    decision = scan.decide(state, Settings(), NOW)

    # THEN it is not enqueued, and flagged as near expiry only inside its window
    assert (decision.verdict, decision.near_expiry, decision.enqueue) == (
        Verdict.NOT_REFRESHABLE,
        near_expiry,
        False,
    )


def test_decide_reports_expiry_facts_of_a_due_key() -> None:
    state = _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + 2 * DAY))
    decision = scan.decide(state, Settings(), NOW)
    assert (decision.valid_until, decision.seconds_left) == (NOW + 2 * DAY, 2 * DAY)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (DECISIONS["due"][0], "due"),
        (DECISIONS["no-expiry-record"][0], "inspect"),
        (DECISIONS["pending-on-another-version"][0], "resume"),
    ],
    ids=["due", "inspect", "resume"],
)
def test_decision_request_names_the_secret_version_and_reason(
    state: SecretState, reason: str
) -> None:
    request = scan.decide(state, Settings(), NOW).request("2027-01-15T08:00:00Z")
    assert (request.secret_id, request.reason, request.current_version_id) == (
        ARN,
        reason,
        "v-1",
    )


# Sending -------------------------------------------------------------------------------------


def _requests(count: int) -> list[RotationRequest]:
    return [RotationRequest(f"{ARN}-{n}", "due", current_version_id="v-1") for n in range(count)]


def test_send_requests_sends_one_batch_when_all_are_accepted(sqs) -> None:
    sent, refused = scan.send_requests(sqs, "queue-url", _requests(3))
    assert (sent, refused, len(sqs.batches)) == (3, [], 1)


def test_send_requests_retries_refused_entries_once(sqs) -> None:
    # GIVEN a queue that refuses the second entry of the first call
    requests = _requests(3)
    sqs.refuse(lambda entries: {entries[1]["Id"]})

    # WHEN the batch is sent
    sent, refused = scan.send_requests(sqs, "queue-url", requests)

    # THEN only the refused entry is sent again, and all count as sent
    assert (sent, refused) == (3, [])
    assert [len(batch) for batch in sqs.batches] == [3, 1]
    assert sqs.batches[1][0]["MessageBody"] == requests[1].to_body()


def test_send_requests_returns_entries_refused_twice(sqs) -> None:
    # GIVEN a queue that refuses the same entry in both calls
    requests = _requests(3)
    sqs.refuse(lambda entries: {entries[0]["Id"]}, lambda entries: {entries[0]["Id"]})

    # WHEN the batch is sent
    sent, refused = scan.send_requests(sqs, "queue-url", requests)

    # THEN it is sent no third time and is handed back as unsent
    assert (sent, refused, len(sqs.batches)) == (2, [requests[0]], 2)


def test_send_requests_sets_fifo_group_and_deduplication_ids(sqs) -> None:
    request = _requests(1)[0]
    scan.send_requests(sqs, "queue-url", [request])
    entry = sqs.batches[0][0]
    assert (entry["MessageGroupId"], entry["MessageDeduplicationId"]) == (
        request.group_id(),
        request.deduplication_id(),
    )


def test_send_requests_raises_a_retryable_error_when_the_call_fails(sqs) -> None:
    sqs.fail("send_message_batch", "AWS.SimpleQueueService.NonExistentQueue")
    with pytest.raises(AwsUnavailable):
        scan.send_requests(sqs, "queue-url", _requests(2))


# A whole scan ---------------------------------------------------------------------------------


def _opted_in(sm, name: str, valid_until: int | None, tags: dict | None = None) -> str:
    arn = sm.create(name, "{}", tags=tags)
    if valid_until is not None:
        record = _expiry(sm.version_with(arn, "AWSCURRENT"), valid_until)
        sm.tag_resource(SecretId=arn, Tags=[{"Key": state_tags.EXPIRY_TAG, "Value": record}])
    return arn


@pytest.fixture
def fleet(sm):
    """Secrets of every kind the scanner meets, over several listing pages."""
    due = [_opted_in(sm, f"momento/due-{n}", NOW + DAY) for n in range(11)]
    ok = _opted_in(sm, "momento/ok", NOW + 20 * DAY)
    unknown = _opted_in(sm, "momento/unknown", None)
    _opted_in(sm, "momento/lookalike", NOW + DAY, tags={"momento-token-old": "true"})
    deleted = _opted_in(sm, "momento/deleted", NOW + DAY)
    sm.schedule_deletion(deleted)
    return {"due": due, "ok": ok, "unknown": unknown}


def test_run_scan_enqueues_due_and_unknown_secrets_in_batches_of_ten(
    sm, sqs, settings, fleet
) -> None:
    # GIVEN eleven due secrets, one fine, one never inspected, a look-alike tag and a deletion
    # WHEN a scan runs
    result = scan.run_scan(sm, sqs, settings, NOW)

    # THEN the due and unknown ones are enqueued, ten per call, and nothing else
    bodies = [entry["MessageBody"] for batch in sqs.batches for entry in batch]
    enqueued = {messages.parse_body("m", body).secret_id for body in bodies}
    assert enqueued == {*fleet["due"], fleet["unknown"]}
    assert [len(batch) for batch in sqs.batches] == [10, 2]
    assert result.summary.as_dict() == {
        "scanned": 13,
        "due": 11,
        "to_inspect": 1,
        "not_refreshable": 0,
        "expired": 0,
        "failing": 0,
        "overdue": 0,
        "ok": 1,
        "enqueued": 12,
        "send_failures": 0,
    }
    assert result.unsent == []


@pytest.mark.parametrize("queue", ["fake", None], ids=["with-a-queue", "without-a-queue"])
def test_run_scan_dry_run_decides_but_enqueues_nothing(sm, sqs, fleet, queue) -> None:
    # GIVEN a dry run, with or without a queue to send to
    client = sqs if queue else None

    # WHEN the scan runs
    result = scan.run_scan(sm, client, Settings(), NOW, dry_run=True)

    # THEN every secret is decided and nothing is sent
    assert result.summary.scanned == 13
    assert result.summary.enqueued == 0
    assert sqs.batches == []


@pytest.mark.parametrize(
    ("has_sqs", "queue_url"),
    [(True, None), (False, "https://sqs.example/rotation.fifo")],
    ids=["no-queue-url", "no-sqs-client"],
)
def test_run_scan_refuses_to_run_with_nowhere_to_send(sm, sqs, has_sqs, queue_url) -> None:
    with pytest.raises(ValueError, match="ROTATION_QUEUE_URL"):
        scan.run_scan(sm, sqs if has_sqs else None, Settings(rotation_queue_url=queue_url), NOW)
    assert sm.calls == []


def _first_entry(entries: list[dict]) -> set[str]:
    return {entries[0]["Id"]}


def test_run_scan_hands_back_requests_the_queue_kept_refusing(sm, sqs, settings, fleet) -> None:
    # GIVEN a queue that refuses one entry of the first batch in both attempts
    sqs.refuse(_first_entry, _first_entry)

    # WHEN the scan runs
    result = scan.run_scan(sm, sqs, settings, NOW)

    # THEN that request is reported unsent, and counted as a send failure
    assert len(result.unsent) == 1
    assert (result.summary.enqueued, result.summary.send_failures) == (11, 1)


@pytest.mark.parametrize(
    ("key_format", "failed"),
    [(KeyFormat.V1, True), (KeyFormat.V2, False), (KeyFormat.DISPOSABLE, True)],
    ids=["v1-after-a-failed-rotation", "v2", "disposable-after-a-failed-rotation"],
)
def test_decide_reports_an_expired_key_as_expired_whatever_else_is_known(
    key_format: KeyFormat, failed: bool
) -> None:
    # GIVEN a recorded key that expired yesterday, possibly after its rotation failed for good
    state = _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW - DAY, key_format))
    if failed:
        state = _with_tag(state, state_tags.FAILURE_TAG, "reason=refresh-rejected version=v-1")

    # WHEN the scan decides on it
    decision = scan.decide(state, Settings(), NOW)

    # THEN it counts as expired, so the SecretsExpired alarm fires, and nothing is enqueued
    assert (decision.verdict, decision.enqueue) == (Verdict.EXPIRED, False)


@pytest.mark.parametrize(
    ("hours_left", "failed", "overdue"),
    [
        (30, False, False),
        (20, False, True),
        (20, True, True),
        (2000, True, False),
        (-1, False, False),
    ],
    ids=[
        "due-with-a-day-to-spare",
        "due-inside-the-last-day",
        "failing-in-the-last-day",
        "failing-far-from-expiry",
        "already-expired: an alarm of its own",
    ],
)
def test_decide_marks_keys_overdue_inside_the_minimum_window_whatever_stalled_them(
    hours_left: int, failed: bool, overdue: bool
) -> None:
    # GIVEN a refreshable key with some hours left, perhaps failing
    state = _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + hours_left * 3600))
    if failed:
        state = _with_tag(state, state_tags.FAILURE_TAG, "reason=refresh-rejected version=v-1")

    # WHEN the scan decides on it
    decision = scan.decide(state, Settings(), NOW)

    # THEN it is overdue once less than the minimum refresh window (a day) is left
    assert decision.overdue is overdue


def _with_tag(state: SecretState, key: str, value: str) -> SecretState:
    return dataclasses.replace(state, tags={**state.tags, key: value})


def test_decide_leaves_unrefreshable_keys_to_their_own_alarm_not_overdue() -> None:
    # GIVEN a v2 key with half a day left (nothing can refresh it)
    state = _state(CURRENT_ONLY, expiry=_expiry("v-1", NOW + DAY // 2, KeyFormat.V2))

    # WHEN the scan decides on it
    decision = scan.decide(state, Settings(), NOW)

    # THEN it is reported near expiry (SecretsNotRefreshableNearExpiry), not overdue
    assert (decision.verdict, decision.near_expiry, decision.overdue) == (
        Verdict.NOT_REFRESHABLE,
        True,
        False,
    )
