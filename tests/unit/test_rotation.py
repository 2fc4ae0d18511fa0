"""Rotating one secret against an in-memory Secrets Manager and a fake Momento."""

from __future__ import annotations

import json

import pytest

from keyrotation import rotation, secrets, state_tags
from keyrotation.errors import (
    AwsUnavailable,
    KeyExpired,
    MalformedSecret,
    NotEnoughTime,
    NotRefreshable,
    RefreshRejected,
    VerificationFailed,
)
from keyrotation.key_format import KeyFormat, inspect_key
from keyrotation.messages import RotationRequest
from keyrotation.rotation import Outcome, Rotator
from keyrotation.settings import DAY

NAME = "momento/app"


class Stop(Exception):
    """The invocation ends here, as a timeout or a crash would end it."""


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_rotator(sm, momento, settings, now, sleeps):
    def make(on_step=None, sleep=None) -> Rotator:
        return Rotator(
            sm,
            momento,
            settings,
            clock=lambda: now,
            on_step=on_step,
            sleep=sleep or sleeps.append,
        )

    return make


@pytest.fixture
def rotator(make_rotator) -> Rotator:
    return make_rotator()


def _due(arn: str) -> RotationRequest:
    return RotationRequest(arn, "due")


def _stored(sm, arn: str) -> dict:
    return json.loads(sm.value_of(arn))


def _expiry(sm, arn: str) -> state_tags.ExpiryRecord | None:
    return state_tags.parse_expiry(sm.tags_of(arn).get(state_tags.EXPIRY_TAG))


def _inner(stored_key: str) -> str:
    return inspect_key(NAME, stored_key, "any").inner_jwt


# Not due, due, forced --------------------------------------------------------------------------


def test_rotate_records_the_expiry_of_a_key_that_is_not_due(sm, momento, rotator, keys, now):
    # GIVEN a 30-day key with 20 days left
    arn = sm.create(NAME, keys.due_v1_secret(days_left=20))
    current = sm.version_with(arn, "AWSCURRENT")

    # WHEN the rotator looks at it
    result = rotator.rotate(RotationRequest(arn, "inspect"))

    # THEN nothing is refreshed or stored, and the expiry is recorded for the scanner
    assert (result.outcome, result.version_id) == (Outcome.NOT_DUE, current)
    assert momento.refreshes == []
    assert sm.count("put_secret_value") == 0
    assert _expiry(sm, arn) == state_tags.ExpiryRecord(
        current, now + 20 * DAY, 30 * DAY, KeyFormat.V1
    )


def test_rotate_does_not_rewrite_an_expiry_record_that_is_already_right(sm, rotator, keys):
    # GIVEN a key that is not due, looked at once already
    arn = sm.create(NAME, keys.due_v1_secret(days_left=20))
    rotator.rotate(RotationRequest(arn, "inspect"))

    # WHEN it is looked at again
    rotator.rotate(RotationRequest(arn, "inspect"))

    # THEN the tag is not written a second time
    assert sm.count("tag_resource") == 1


@pytest.mark.parametrize("key_field", ["apiKey", "authToken", "apiToken"])
def test_rotate_refreshes_a_due_key_and_makes_it_current(
    sm, momento, rotator, keys, now, key_field: str
):
    # GIVEN a due v1 key stored under one of the known field names, with a field of the user's
    original = keys.due_v1_secret(days_left=2, key_field=key_field, owner="payments")
    arn = sm.create(NAME, original)
    old_version = sm.version_with(arn, "AWSCURRENT")

    # WHEN it is rotated
    result = rotator.rotate(_due(arn))

    # THEN Momento got the inner key and the refresh token, once
    old_document = json.loads(original)
    assert momento.refreshes == [(NAME, _inner(old_document[key_field]), keys.refresh_token)]

    # AND the new key is current, in the same shape, under the deterministic version id
    new_version = secrets.rotation_token(arn, old_version)
    assert (result.outcome, result.version_id) == (Outcome.ROTATED, new_version)
    stored = _stored(sm, arn)
    assert stored["owner"] == "payments"
    assert set(stored) == {key_field, "refreshToken", "validUntil", "owner"}
    assert stored["refreshToken"] == "rt-refreshed-1"
    assert stored["validUntil"] == str(now + 30 * DAY)
    assert momento.verified == [_inner(stored[key_field])]

    # AND the labels are as after a native rotation: no AWSPENDING left anywhere
    assert sm.labels(arn) == {new_version: ["AWSCURRENT"], old_version: ["AWSPREVIOUS"]}

    # AND the tags record the new expiry and the time of the rotation
    assert _expiry(sm, arn) == state_tags.ExpiryRecord(
        new_version, now + 30 * DAY, 30 * DAY, KeyFormat.V1
    )
    assert sm.tags_of(arn)[state_tags.LAST_ROTATED_TAG] == state_tags.utc_stamp(now)


def test_rotate_refreshes_a_due_legacy_jwt(sm, momento, rotator, keys, now):
    # GIVEN a due legacy JWT
    valid_until = now + DAY
    arn = sm.create(NAME, keys.secret(keys.legacy(valid_until), valid_until))

    # WHEN it is rotated
    result = rotator.rotate(_due(arn))

    # THEN it is replaced by the v1 key Momento returned, keeping the number type of validUntil
    assert result.outcome is Outcome.ROTATED
    stored = _stored(sm, arn)
    assert inspect_key(NAME, stored["apiKey"], "t").format is KeyFormat.V1
    assert stored["validUntil"] == now + 30 * DAY


def test_rotate_clears_the_failure_tag_once_a_rotation_succeeds(sm, rotator, keys):
    # GIVEN a due secret tagged as failing
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    failure = state_tags.FailureRecord("momento-unavailable", "v-old", "2027-01-14T00:00:00Z")
    sm.tag_resource(SecretId=arn, Tags=[{"Key": state_tags.FAILURE_TAG, "Value": failure.to_tag()}])

    # WHEN it is rotated
    rotator.rotate(_due(arn))

    # THEN the failure tag is gone
    assert state_tags.FAILURE_TAG not in sm.tags_of(arn)


def test_rotate_clears_the_failure_tag_of_a_key_found_not_due(sm, rotator, keys):
    # GIVEN a secret tagged as failing whose (new) key turns out not to be due
    arn = sm.create(NAME, keys.due_v1_secret(days_left=20))
    failure = state_tags.FailureRecord("key-expired", "v-old", "2027-01-14T00:00:00Z")
    sm.tag_resource(SecretId=arn, Tags=[{"Key": state_tags.FAILURE_TAG, "Value": failure.to_tag()}])

    # WHEN the rotator looks at it
    # THEN the stale failure tag is removed
    assert rotator.rotate(_due(arn)).outcome is Outcome.NOT_DUE
    assert state_tags.FAILURE_TAG not in sm.tags_of(arn)


def test_rotate_forces_a_key_that_is_not_due_when_an_operator_asks(sm, momento, rotator, keys):
    # GIVEN a key with 20 days left
    arn = sm.create(NAME, keys.due_v1_secret(days_left=20))

    # WHEN an operator asks for a rotation
    result = rotator.rotate(RotationRequest(arn, "manual"))

    # THEN it is refreshed anyway
    assert result.outcome is Outcome.ROTATED
    assert len(momento.refreshes) == 1


# Secrets that are not this tool's business ---------------------------------------------------


@pytest.mark.parametrize(
    "tags",
    [{}, {"momento-token-old": "true"}, {"Momento-Token": "true"}],
    ids=["no-tags", "look-alike-prefix", "other-case"],
)
def test_rotate_skips_a_secret_without_the_opt_in_tag(sm, momento, rotator, keys, tags):
    # GIVEN a due secret that did not opt in
    arn = sm.create(NAME, keys.due_v1_secret(days_left=1), tags=tags)

    # WHEN the rotator is asked to rotate it
    result = rotator.rotate(RotationRequest(arn, "manual"))

    # THEN it is skipped, and nothing is refreshed or written
    assert result.outcome is Outcome.SKIPPED
    assert momento.refreshes == []
    assert sm.writes == []
    assert sm.count("get_secret_value") == 0


@pytest.mark.parametrize("gone", ["scheduled-for-deletion", "does-not-exist"])
def test_rotate_skips_a_secret_that_is_gone(sm, momento, rotator, keys, gone):
    # GIVEN a secret scheduled for deletion, or one that never existed
    arn = sm.create(NAME, keys.due_v1_secret(days_left=1))
    if gone == "scheduled-for-deletion":
        sm.schedule_deletion(arn)
    else:
        arn = arn.replace("momento/app", "momento/missing")

    # WHEN the rotator is asked to rotate it
    result = rotator.rotate(_due(arn))

    # THEN it is skipped without a write
    assert result.outcome is Outcome.SKIPPED
    assert (momento.refreshes, sm.writes) == ([], [])


# Keys that cannot be refreshed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_secret", "key_format"),
    [
        (lambda keys: keys.secret(keys.v2(keys.now + DAY), keys.now + DAY), KeyFormat.V2),
        (
            lambda keys: keys.secret(
                keys.v1(keys.now + 3600, lifetime=DAY), keys.now + 3600, refresh_token=None
            ),
            KeyFormat.DISPOSABLE,
        ),
    ],
    ids=["v2-key", "disposable-token"],
)
def test_rotate_refuses_formats_without_a_refresh_protocol(
    sm, momento, rotator, keys, make_secret, key_format
):
    # GIVEN a due key of a format Momento cannot refresh
    arn = sm.create(NAME, make_secret(keys))

    # WHEN it is rotated
    # THEN it fails permanently, without calling Momento
    with pytest.raises(NotRefreshable):
        rotator.rotate(_due(arn))
    assert momento.refreshes == []

    # AND its expiry is recorded, so the scanner stops sending it
    assert _expiry(sm, arn).key_format is key_format


def test_rotate_refuses_a_key_without_a_refresh_token(sm, momento, rotator, keys, now):
    # GIVEN a due 30-day v1 key stored without its refresh token
    valid_until = now + DAY
    arn = sm.create(NAME, keys.secret(keys.v1(valid_until), valid_until, refresh_token=None))

    # WHEN it is rotated
    # THEN it fails permanently, naming the missing token, without calling Momento
    with pytest.raises(NotRefreshable, match="refreshToken"):
        rotator.rotate(_due(arn))
    assert momento.refreshes == []


def test_rotate_refuses_an_expired_key_without_calling_momento(sm, momento, rotator, keys, now):
    # GIVEN a key whose validUntil has passed
    arn = sm.create(NAME, keys.secret(keys.v1(now - 60), now - 60))

    # WHEN it is rotated
    # THEN it fails permanently: Momento would refuse an expired key
    with pytest.raises(KeyExpired):
        rotator.rotate(_due(arn))
    assert (momento.refreshes, sm.count("put_secret_value")) == ([], 0)


@pytest.mark.parametrize(
    "value",
    [None, "not json", json.dumps({"apiKey": "not a momento key"})],
    ids=["no-current-version", "not-json", "not-a-key"],
)
def test_rotate_refuses_a_secret_it_cannot_read(sm, momento, rotator, value):
    # GIVEN a secret with no current value, or one that holds no Momento key
    arn = sm.create(NAME, value)

    # WHEN it is rotated
    # THEN it fails permanently, without calling Momento
    with pytest.raises(MalformedSecret):
        rotator.rotate(_due(arn))
    assert momento.refreshes == []


def test_rotate_does_not_start_a_refresh_it_has_no_time_to_store(sm, momento, rotator, keys):
    # GIVEN a due key and an invocation with five seconds left
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))

    # WHEN it is rotated
    # THEN it stops before refreshing, retryably, telling how long the key has left
    with pytest.raises(NotEnoughTime) as raised:
        rotator.rotate(_due(arn), remaining_seconds=lambda: 5.0)
    assert momento.refreshes == []
    assert raised.value.seconds_left == 2 * DAY


# Races with a sibling rotation ------------------------------------------------------------------


def _sibling_promotes(sm, arn: str, value: str = '{"apiKey": "sibling"}'):
    return lambda: sm.put_secret_value(
        SecretId=arn, ClientRequestToken="sibling-version", SecretString=value
    )


def test_rotate_reports_superseded_when_a_refused_refresh_lost_to_a_sibling(
    sm, momento, rotator, keys
):
    # GIVEN a due key whose refresh is refused because a sibling rotation just made its key current
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    momento.before_answer = _sibling_promotes(sm, arn)
    momento.refresh_error = RefreshRejected(NAME, "refresh token already used")

    # WHEN it is rotated
    result = rotator.rotate(_due(arn))

    # THEN it steps aside: the sibling's key stays current
    assert result.outcome is Outcome.SUPERSEDED
    assert sm.version_with(arn, "AWSCURRENT") == "sibling-version"
    assert sm.count("put_secret_value") == 1  # the sibling's


def test_rotate_waits_briefly_for_a_sibling_to_store_its_key(sm, momento, keys, make_rotator):
    # GIVEN a refused refresh, and a sibling whose key shows only after the first pause
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    momento.refresh_error = RefreshRejected(NAME, "refresh token already used")
    sibling = _sibling_promotes(sm, arn)
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 1:
            sibling()

    # WHEN it is rotated
    result = make_rotator(sleep=sleep).rotate(_due(arn))

    # THEN the sibling is recognised after one pause
    assert result.outcome is Outcome.SUPERSEDED
    assert pauses == [rotation.SIBLING_PAUSE_SECONDS]


def test_rotate_raises_a_refused_refresh_when_no_sibling_rotated(
    sm, momento, rotator, keys, sleeps
):
    # GIVEN a due key whose refresh Momento refuses, with no other rotation going on
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    old = sm.value_of(arn)
    momento.refresh_error = RefreshRejected(NAME, "unknown refresh token")

    # WHEN it is rotated
    # THEN the refusal is raised after a few looks, and the secret is unchanged
    with pytest.raises(RefreshRejected):
        rotator.rotate(_due(arn))
    assert len(sleeps) == rotation.SIBLING_LOOKS - 1
    assert sm.value_of(arn) == old
    assert sm.count("put_secret_value") == 0


def test_rotate_reports_superseded_when_a_sibling_stored_under_the_same_version(
    sm, momento, rotator, keys
):
    # GIVEN a sibling that stores its own refreshed key under this rotation's version id
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    token = secrets.rotation_token(arn, sm.version_with(arn, "AWSCURRENT"))
    momento.before_answer = lambda: sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString='{"apiKey": "the sibling key"}',
        VersionStages=["AWSPENDING"],
    )

    # WHEN this rotation tries to store a different value under that id
    result = rotator.rotate(_due(arn))

    # THEN Secrets Manager refuses it, and this rotation steps aside without overwriting
    assert result.outcome is Outcome.SUPERSEDED
    assert json.loads(sm.value_of(arn, "AWSPENDING")) == {"apiKey": "the sibling key"}


def test_rotate_removes_a_foreign_pending_label_and_proceeds(sm, momento, rotator, keys):
    # GIVEN a due secret on which another tool left an AWSPENDING version
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken="foreign-version",
        SecretString="{}",
        VersionStages=["AWSPENDING"],
    )

    # WHEN it is rotated
    result = rotator.rotate(_due(arn))

    # THEN the foreign label is gone and the rotation finished normally
    assert result.outcome is Outcome.ROTATED
    assert "foreign-version" not in sm.labels(arn)
    assert sm.version_with(arn, "AWSPENDING") is None
    assert sm.version_with(arn, "AWSCURRENT") == result.version_id


# Failures while storing and verifying -----------------------------------------------------------


def test_rotate_retries_a_throttled_write_of_the_refreshed_key(sm, momento, rotator, keys, sleeps):
    # GIVEN Secrets Manager throttles the first two writes
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    sm.fail("put_secret_value", "ThrottlingException", "ThrottlingException")

    # WHEN the key is rotated
    result = rotator.rotate(_due(arn))

    # THEN the write is retried with pauses, the key refreshed only once, and stored
    assert result.outcome is Outcome.ROTATED
    assert sm.count("put_secret_value") == 3
    assert sleeps == [0.2, 0.4]
    assert len(momento.refreshes) == 1
    assert _stored(sm, arn)["refreshToken"] == "rt-refreshed-1"


def test_rotate_gives_up_retrying_a_throttled_write_after_its_attempts(sm, rotator, keys, settings):
    # GIVEN every write is throttled
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    sm.fail("put_secret_value", *["ThrottlingException"] * settings.write_retry_attempts)

    # WHEN the key is rotated
    # THEN a retryable error is raised, carrying how long the key has left
    with pytest.raises(AwsUnavailable) as raised:
        rotator.rotate(_due(arn))
    assert sm.count("put_secret_value") == settings.write_retry_attempts
    assert raised.value.seconds_left == 2 * DAY


def test_rotate_leaves_current_alone_when_the_new_key_fails_verification(
    sm, momento, rotator, keys
):
    # GIVEN Momento does not accept the freshly refreshed key
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    old_version, old_value = sm.version_with(arn, "AWSCURRENT"), sm.value_of(arn)
    momento.verify_error = VerificationFailed(NAME, "UNAUTHENTICATED")

    # WHEN it is rotated
    # THEN the failure is raised, the old key stays current, and no AWSPENDING is left behind
    with pytest.raises(VerificationFailed):
        rotator.rotate(_due(arn))
    assert (sm.version_with(arn, "AWSCURRENT"), sm.value_of(arn)) == (old_version, old_value)
    assert sm.version_with(arn, "AWSPENDING") is None


# Stopping between steps -------------------------------------------------------------------------


def _stopping_at(step: str):
    def on_step(reached: str) -> None:
        if reached == step:
            raise Stop(step)

    return on_step


# NOTE: "after-refresh" is left out on purpose. The granted key lives only in memory until it is
# stored, so a stop there makes the next attempt refresh again; the two tests after this one
# pin what happens then (README, Known limits).
@pytest.mark.parametrize("step", [step for step in rotation.STEPS if step != "after-refresh"])
def test_rotate_resumes_after_a_stop_at_any_step_with_one_refresh(
    sm, momento, keys, now, make_rotator, step
):
    # GIVEN a due key, and a first attempt that stops at `step`
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    with pytest.raises(Stop):
        make_rotator(on_step=_stopping_at(step)).rotate(_due(arn))

    # WHEN the message is delivered again
    result = make_rotator().rotate(_due(arn))

    # THEN the rotation is finished with the key of the one refresh
    assert result.outcome in {Outcome.ROTATED, Outcome.RESUMED, Outcome.NOT_DUE}
    assert len(momento.refreshes) == 1
    assert _stored(sm, arn)["refreshToken"] == "rt-refreshed-1"
    assert sm.version_with(arn, "AWSPENDING") is None
    assert _expiry(sm, arn).version_id == sm.version_with(arn, "AWSCURRENT")
    assert _expiry(sm, arn).valid_until == now + 30 * DAY


def test_rotate_after_a_stop_between_refresh_and_store_refreshes_again(
    sm, momento, keys, make_rotator
):
    # GIVEN a first attempt that stopped with a granted, unstored key
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    with pytest.raises(Stop):
        make_rotator(on_step=_stopping_at("after-refresh")).rotate(_due(arn))

    # WHEN the message is delivered again (and Momento accepts the old token again)
    result = make_rotator().rotate(_due(arn))

    # THEN the second refresh's key is stored and current
    assert result.outcome is Outcome.ROTATED
    assert len(momento.refreshes) == 2
    assert _stored(sm, arn)["refreshToken"] == "rt-refreshed-2"


def test_rotate_after_a_stop_between_refresh_and_store_keeps_the_old_key_if_refused(
    sm, momento, keys, make_rotator
):
    # GIVEN a first attempt that stopped with a granted, unstored key
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    old = sm.value_of(arn)
    with pytest.raises(Stop):
        make_rotator(on_step=_stopping_at("after-refresh")).rotate(_due(arn))

    # WHEN the message is delivered again and Momento refuses the spent refresh token
    momento.refresh_error = RefreshRejected(NAME, "INVALID_ARGUMENT (refresh token already used)")
    with pytest.raises(RefreshRejected):
        make_rotator().rotate(_due(arn))

    # THEN the stored secret, whose old key is still valid, is exactly as it was
    assert sm.value_of(arn) == old
    assert sm.version_with(arn, "AWSPENDING") is None


def test_rotate_resumes_a_stored_rotation_without_calling_refresh(sm, momento, keys, make_rotator):
    # GIVEN an attempt that stored the new key as AWSPENDING and stopped
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    with pytest.raises(Stop):
        make_rotator(on_step=_stopping_at("after-store")).rotate(_due(arn))
    pending = sm.version_with(arn, "AWSPENDING")

    # WHEN the rotator runs again
    result = make_rotator().rotate(_due(arn))

    # THEN it finishes that version, reporting a resumed rotation
    assert (result.outcome, result.version_id) == (Outcome.RESUMED, pending)
    assert sm.version_with(arn, "AWSCURRENT") == pending


# Recording failures -----------------------------------------------------------------------------


def test_record_failure_tags_the_current_version(sm, rotator, keys, now):
    # GIVEN an opted-in secret whose rotation failed
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))

    # WHEN the failure is recorded
    rotator.record_failure(arn, "key-expired")

    # THEN the tag names the reason, the current version and the time
    record = state_tags.parse_failure(sm.tags_of(arn)[state_tags.FAILURE_TAG])
    assert record == state_tags.FailureRecord(
        "key-expired", sm.version_with(arn, "AWSCURRENT"), state_tags.utc_stamp(now)
    )


def test_record_failure_leaves_secrets_that_did_not_opt_in_alone(sm, rotator, keys):
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2), tags={})
    rotator.record_failure(arn, "key-expired")
    assert sm.writes == []


def test_record_failure_is_best_effort(sm, rotator, keys):
    # GIVEN tagging is throttled
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    sm.fail("tag_resource", "ThrottlingException")

    # WHEN a failure is recorded
    # THEN nothing is raised: the dead-letter entry is what counts
    rotator.record_failure(arn, "key-expired")
    assert state_tags.FAILURE_TAG not in sm.tags_of(arn)


def test_rotation_result_as_dict_names_identifiers_only(sm, rotator, keys):
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    result = rotator.rotate(_due(arn)).as_dict()
    assert set(result) == {"secretId", "outcome", "detail", "versionId", "validUntil"}
    assert result["outcome"] == "rotated"


def _leave_unlabelled_version(sm, arn: str, version_id: str) -> None:
    """A version holding a value and no label, as a refused key or a rolled-back id leaves."""
    sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=version_id,
        SecretString='{"apiKey": "a leftover"}',
        VersionStages=["AWSPENDING"],
    )
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=version_id
    )


def test_rotate_moves_past_a_leftover_version_that_holds_its_id(sm, momento, rotator, keys):
    # GIVEN a due secret whose rotation id is already taken by an unlabelled leftover version
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    current = sm.version_with(arn, "AWSCURRENT")
    first, second = secrets.rotation_tokens(arn, current)[:2]
    _leave_unlabelled_version(sm, arn, first)

    # WHEN it is rotated
    result = rotator.rotate(_due(arn))

    # THEN the granted key is stored under the next id and promoted, not thrown away
    assert (result.outcome, result.version_id) == (Outcome.ROTATED, second)
    assert sm.version_with(arn, "AWSCURRENT") == second
    assert len(momento.refreshes) == 1


def test_rotate_resumes_a_rotation_stored_under_a_later_id(sm, momento, keys, make_rotator):
    # GIVEN a rotation that moved past a leftover id and stopped after storing its key
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    first = secrets.rotation_tokens(arn, sm.version_with(arn, "AWSCURRENT"))[0]
    _leave_unlabelled_version(sm, arn, first)

    def stop_after_store(step: str) -> None:
        if step == "after-store":
            raise Stop

    with pytest.raises(Stop):
        make_rotator(on_step=stop_after_store).rotate(_due(arn))

    # WHEN the next delivery arrives
    result = make_rotator().rotate(_due(arn))

    # THEN it finishes that rotation without a second refresh
    assert result.outcome is Outcome.RESUMED
    assert len(momento.refreshes) == 1


def test_rotate_skips_a_secret_the_rotator_is_not_allowed_to_describe(sm, momento, rotator, keys):
    # GIVEN a secret that, on AWS, answers AccessDenied: untagged since the scan, or gone
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    sm.fail("describe_secret", "AccessDeniedException")

    # WHEN it is rotated
    result = rotator.rotate(_due(arn))

    # THEN it is skipped, not dead-lettered, and nothing is written
    assert result.outcome is Outcome.SKIPPED
    assert "AccessDenied" in result.detail
    assert sm.writes == []


def test_record_failure_leaves_a_version_promoted_meanwhile_unmarked(sm, rotator, keys):
    # GIVEN a rotation that failed on one version while a sibling promoted the next
    arn = sm.create(NAME, keys.due_v1_secret(days_left=2))
    failed_version = sm.version_with(arn, "AWSCURRENT")
    sm.put_secret_value(SecretId=arn, ClientRequestToken="v-new", SecretString="{}")

    # WHEN the failure is recorded for the version it happened on
    rotator.record_failure(arn, "refresh-rejected", failed_version)

    # THEN the healthy current version is not tagged as failing
    assert state_tags.FAILURE_TAG not in sm.tags_of(arn)


def test_rotate_records_the_expiry_of_a_key_found_expired(sm, momento, rotator, keys, now):
    # GIVEN an opted-in secret whose key expired an hour ago
    arn = sm.create(NAME, keys.due_v1_secret(days_left=-1 / 24))

    # WHEN it is rotated
    with pytest.raises(KeyExpired):
        rotator.rotate(_due(arn))

    # THEN the expiry is recorded first, so every later scan reports the key as expired
    record = state_tags.parse_expiry(sm.tags_of(arn)[state_tags.EXPIRY_TAG])
    assert record is not None
    assert record.version_id == sm.version_with(arn, "AWSCURRENT")
    assert record.valid_until < now
