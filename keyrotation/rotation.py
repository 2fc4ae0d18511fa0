"""Rotating one secret: the steps, each safe to run twice, and the resume rules between them.

    describe ─► resume or clean AWSPENDING ─► read AWSCURRENT ─► due? ─no─► record expiry, stop
                                                                  │yes
    refresh (Momento) ─► store AWSPENDING (deterministic token) ─► verify ─► promote AWSCURRENT
                                                                     ─► drop AWSPENDING ─► tag

The version id of a rotation is derived from the secret and the version it starts from, so a
retry after a crash finds its own AWSPENDING version and finishes it without a second refresh,
and two concurrent rotations of one secret collide on that id instead of storing two keys. A
sibling that won a race is recognised by re-reading the secret before anything is called a
failure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from keyrotation import secrets, state_tags
from keyrotation.due import Assessment, assess
from keyrotation.errors import (
    AwsUnavailable,
    KeyExpired,
    MalformedSecret,
    NotEnoughTime,
    NotRefreshable,
    RefreshRejected,
    RotationError,
    TransientError,
    VerificationFailed,
    VersionIdsTaken,
)
from keyrotation.key_format import REFRESHABLE_FORMATS, KeyFormat, KeyInfo, inspect_key
from keyrotation.messages import RotationRequest
from keyrotation.momento_auth import MomentoAuth, RefreshedKey
from keyrotation.secret_value import TokenSecret, parse_secret
from keyrotation.secrets import SecretGone, SecretState, VersionConflict
from keyrotation.settings import Settings

logger = Logger(child=True)

# Step boundaries a test may stop at to prove that every step resumes. No-op in production.
STEPS = ("after-refresh", "after-store", "after-verify", "after-promote", "before-tag")

# How long a refused refresh waits for a concurrent sibling's write to show (3 looks, 1 s apart).
SIBLING_LOOKS = 3
SIBLING_PAUSE_SECONDS = 1.0


class Outcome(StrEnum):
    ROTATED = "rotated"
    RESUMED = "resumed"
    NOT_DUE = "not-due"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RotationResult:
    secret_id: str
    outcome: Outcome
    detail: str
    version_id: str | None = None
    valid_until: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "secretId": self.secret_id,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "versionId": self.version_id,
            "validUntil": self.valid_until,
        }


@dataclass(frozen=True)
class _Current:
    state: SecretState
    version_id: str
    secret: TokenSecret
    key: KeyInfo


class Rotator:
    """Rotates secrets; one instance serves many invocations.

    `remaining_seconds` reports how long the invocation may still run (Lambda's context);
    `on_step` is called at each boundary in `STEPS`.
    """

    def __init__(
        self,
        secrets_client: Any,
        momento: MomentoAuth,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        on_step: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sm = secrets_client
        self._momento = momento
        self._settings = settings
        self._clock = clock
        self._on_step = on_step or (lambda step: None)
        self._sleep = sleep

    def rotate(
        self,
        request: RotationRequest,
        remaining_seconds: Callable[[], float] = lambda: math.inf,
    ) -> RotationResult:
        """Bring one secret to a current, unexpired key. Raises a `RotationError` subclass."""
        try:
            state = secrets.describe(self._sm, request.secret_id)
        except SecretGone as gone:
            return RotationResult(request.secret_id, Outcome.SKIPPED, gone.detail)
        except secrets.AwsCallFailed as refused:
            if refused.code != "AccessDeniedException":
                raise
            # The rotator may describe only opted-in secrets: on AWS, a secret untagged (or
            # deleted) since the scan answers AccessDenied. A rotator that sees this for every
            # secret is misconfigured: RotationSkipped in three scans running raises an alarm.
            detail = "the rotator may not read it: not opted in, or gone (AccessDenied)"
            logger.warning(
                "skipping a secret", extra={"secret_arn": request.secret_id, "detail": detail}
            )
            return RotationResult(request.secret_id, Outcome.SKIPPED, detail)
        if not state.has_tag(self._settings.tag_key):
            detail = f"the secret does not carry the tag {self._settings.tag_key}"
            return RotationResult(state.arn, Outcome.SKIPPED, detail)

        current_id = state.current_version_id
        if current_id is None:
            raise MalformedSecret(state.name, "the secret has no AWSCURRENT version")
        try:
            return self._rotate_from(request, state, current_id, remaining_seconds)
        except RotationError as error:
            error.version_id = error.version_id or current_id
            # Every retry is judged against the key's deadline, even one that failed before
            # the key was read (a throttled read, a failed check while resuming).
            if isinstance(error, TransientError) and error.seconds_left is None:
                error.seconds_left = self._seconds_left(state, current_id)
            raise

    def _rotate_from(
        self,
        request: RotationRequest,
        state: SecretState,
        current_id: str,
        remaining_seconds: Callable[[], float],
    ) -> RotationResult:
        tokens = secrets.rotation_tokens(state.arn, current_id)

        pending_id = state.pending_version_id
        if pending_id in tokens:
            return self._resume(state, current_id, pending_id, remaining_seconds)
        if pending_id is not None:
            # Ours and already promoted (a stop before the label came off), or another tool's.
            logger.warning(
                "removing a stale AWSPENDING label",
                extra={"secret_arn": state.arn, "version_id": pending_id},
            )
            secrets.remove_pending(self._sm, state.arn, pending_id)

        current = self._read_current(state, current_id)
        assessment = assess(
            current.secret.valid_until, current.key.lifetime_seconds, self._settings, self._clock()
        )
        try:
            return self._rotate_if_due(request, current, tokens, assessment, remaining_seconds)
        except TransientError as error:
            error.seconds_left = assessment.seconds_left
            raise

    def record_failure(self, secret_id: str, reason: str, version_id: str | None = None) -> None:
        """Tag the version that failed, so scans stop re-enqueuing it until the value changes.

        Only while `version_id` still holds AWSCURRENT: a version a sibling promoted meanwhile
        is healthy and must not be marked. Best effort: a failure to tag is logged and
        swallowed, the dead-letter entry is what counts.
        """
        try:
            state = secrets.describe(self._sm, secret_id)
            if state.current_version_id is None or not state.has_tag(self._settings.tag_key):
                return
            if version_id is not None and state.current_version_id != version_id:
                return
            record = state_tags.FailureRecord(
                reason, state.current_version_id, state_tags.utc_stamp(self._clock())
            )
            secrets.tag(self._sm, state.arn, {state_tags.FAILURE_TAG: record.to_tag()})
        except RotationError as error:
            logger.warning(
                "could not record the failure on the secret",
                extra={"secret_arn": secret_id, "error_reason": error.reason},
            )

    # The steps -----------------------------------------------------------------------------

    def _rotate_if_due(
        self,
        request: RotationRequest,
        current: _Current,
        tokens: list[str],
        assessment: Assessment,
        remaining_seconds: Callable[[], float],
    ) -> RotationResult:
        arn = current.state.arn
        if not assessment.needs_refresh and not request.force:
            if _tags_unwritten(current.state, current.version_id):
                # A rotation promoted this version and stopped before its tags: finish it.
                return self._record_rotation(
                    current.state,
                    current.version_id,
                    current.key,
                    current.secret.valid_until,
                    current.key.lifetime_seconds,
                    Outcome.RESUMED,
                )
            self._record_expiry(current.state, current.version_id, current.secret, current.key)
            if state_tags.FAILURE_TAG in current.state.tags:
                secrets.untag(self._sm, arn, [state_tags.FAILURE_TAG])
            detail = _not_due_detail(assessment.seconds_left)
            return RotationResult(
                arn, Outcome.NOT_DUE, detail, current.version_id, current.secret.valid_until
            )

        refresh_token = self._refreshable(current)
        if assessment.seconds_left is not None and assessment.seconds_left <= 0:
            # Recorded first, so the scanner reports it as expired from now on.
            self._record_expiry(current.state, current.version_id, current.secret, current.key)
            raise KeyExpired(
                current.state.name, "the key has expired and can no longer be refreshed"
            )
        if remaining_seconds() < self._settings.min_time_for_rotation_seconds:
            raise NotEnoughTime(current.state.name, "too little time left to refresh and store")

        try:
            refreshed = self._momento.refresh(current.state.name, current.key, refresh_token)
        except RefreshRejected:
            if self._sibling_rotated(arn, current.version_id, tokens):
                return RotationResult(arn, Outcome.SUPERSEDED, "another rotation refreshed it")
            raise
        self._on_step("after-refresh")

        new_value = current.secret.with_refreshed_key(
            refreshed.stored_key, refreshed.refresh_token, refreshed.valid_until
        )
        new_id = self._store(
            current.state, current.version_id, tokens, new_value, remaining_seconds
        )
        if new_id is None:
            return RotationResult(arn, Outcome.SUPERSEDED, "another rotation stored a new key")
        self._on_step("after-store")

        new_key = inspect_key(current.state.name, refreshed.stored_key, refreshed.refresh_token)
        lifetime = _lifetime(refreshed, self._clock())
        return self._finish(
            current.state,
            current.version_id,
            new_id,
            new_key,
            refreshed.valid_until,
            lifetime,
            Outcome.ROTATED,
        )

    def _resume(
        self,
        state: SecretState,
        current_id: str,
        token: str,
        remaining_seconds: Callable[[], float],
    ) -> RotationResult:
        """An earlier attempt stored AWSPENDING under this rotation's token: finish it."""
        logger.info(
            "resuming a stored rotation", extra={"secret_arn": state.arn, "version_id": token}
        )
        pending = parse_secret(state.name, secrets.get_value(self._sm, state.arn, token))
        key = inspect_key(state.name, pending.api_key, pending.refresh_token)
        lifetime = key.lifetime_seconds
        return self._finish(
            state, current_id, token, key, pending.valid_until, lifetime, Outcome.RESUMED
        )

    def _finish(
        self,
        state: SecretState,
        old_id: str,
        new_id: str,
        new_key: KeyInfo,
        valid_until: int,
        lifetime: int | None,
        outcome: Outcome,
    ) -> RotationResult:
        try:
            self._momento.verify(state.name, new_key)
        except VerificationFailed as error:
            # Leave AWSCURRENT exactly as it was and the refused key unlabelled, where a person
            # can still find it (its refresh token is the only live one now).
            secrets.remove_pending(self._sm, state.arn, new_id)
            error.detail += f"; the refreshed key is kept, unlabelled, in version {new_id}"
            error.args = (f"{error.secret_id}: {error.detail}",)
            raise
        self._on_step("after-verify")

        try:
            secrets.promote(self._sm, state.arn, new_id, old_id)
        except secrets.AwsCallFailed:
            fresh = secrets.describe(self._sm, state.arn)
            if fresh.current_version_id != new_id:
                if fresh.current_version_id != old_id:
                    # Someone else's version is current: keep it, and unlabel ours so that no
                    # stray AWSPENDING is left for the next rotation or native rotation.
                    secrets.remove_pending(self._sm, state.arn, new_id)
                    return RotationResult(
                        state.arn, Outcome.SUPERSEDED, "another rotation promoted"
                    )
                raise
        self._on_step("after-promote")

        secrets.remove_pending(self._sm, state.arn, new_id)
        self._on_step("before-tag")
        return self._record_rotation(state, new_id, new_key, valid_until, lifetime, outcome)

    def _record_rotation(
        self,
        state: SecretState,
        new_id: str,
        new_key: KeyInfo,
        valid_until: int,
        lifetime: int | None,
        outcome: Outcome,
    ) -> RotationResult:
        """The last step: tag the promoted version with its expiry and the rotation's time."""
        now = self._clock()
        record = state_tags.ExpiryRecord(new_id, valid_until, lifetime, new_key.format)
        secrets.tag(
            self._sm,
            state.arn,
            {
                state_tags.EXPIRY_TAG: record.to_tag(),
                state_tags.LAST_ROTATED_TAG: state_tags.utc_stamp(now),
            },
        )
        if state_tags.FAILURE_TAG in state.tags:
            secrets.untag(self._sm, state.arn, [state_tags.FAILURE_TAG])
        logger.info(
            "rotated",
            extra={
                "secret_arn": state.arn,
                "version_id": new_id,
                "valid_until": valid_until,
                "outcome": outcome.value,
            },
        )
        return RotationResult(state.arn, outcome, "new key stored and current", new_id, valid_until)

    def _store(
        self,
        state: SecretState,
        started_from: str,
        tokens: list[str],
        value: str,
        remaining_seconds: Callable[[], float],
    ) -> str | None:
        """Write the refreshed key as AWSPENDING; None when a sibling rotation got there first.

        A version id already taken is a sibling's work only if it holds AWSPENDING or
        AWSCURRENT has moved on; a leftover (a refused key, a rolled-back version) makes the
        rotation move on to its next id instead of throwing the granted key away.
        """
        for token in tokens:
            try:
                return self._put(state.arn, token, value, remaining_seconds)
            except VersionConflict:
                fresh = secrets.describe(self._sm, state.arn)
                if fresh.current_version_id != started_from or fresh.pending_version_id in tokens:
                    return None
                logger.warning(
                    "a leftover version holds this rotation's id; using the next one",
                    extra={"secret_arn": state.arn, "version_id": token},
                )
        raise VersionIdsTaken(
            state.name,
            f"all {len(tokens)} version ids of this rotation are taken by leftover versions; "
            "the refreshed key could not be stored",
        )

    def _put(self, arn: str, token: str, value: str, remaining_seconds: Callable[[], float]) -> str:
        """Write once, retrying throttles with the same token while time allows.

        The key was granted already, so giving up early would drop it; the same token makes
        each retry idempotent.
        """
        attempts = max(1, self._settings.write_retry_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return secrets.put_pending(self._sm, arn, token, value)
            except AwsUnavailable:
                pause = min(2.0 ** (attempt - 1) * 0.2, 5.0)
                if attempt == attempts or remaining_seconds() < pause + 2.0:
                    raise
                logger.warning(
                    "retrying the write of a refreshed key",
                    extra={"secret_arn": arn, "attempt": attempt},
                )
                self._sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    # Reading and deciding -----------------------------------------------------------------

    def _read_current(self, state: SecretState, version_id: str) -> _Current:
        value = secrets.get_value(self._sm, state.arn, version_id)
        secret = parse_secret(state.name, value)
        key = inspect_key(state.name, secret.api_key, secret.refresh_token)
        return _Current(state, version_id, secret, key)

    def _refreshable(self, current: _Current) -> str:
        name = current.state.name
        if current.key.format not in REFRESHABLE_FORMATS:
            self._record_expiry(current.state, current.version_id, current.secret, current.key)
            hint = _NOT_REFRESHABLE_HINTS[current.key.format]
            raise NotRefreshable(name, f"a {current.key.format} key cannot be refreshed: {hint}")
        if current.secret.refresh_token is None:
            self._record_expiry(current.state, current.version_id, current.secret, current.key)
            raise NotRefreshable(name, "the secret has no refreshToken; download a new key")
        return current.secret.refresh_token

    def _record_expiry(
        self, state: SecretState, version_id: str, secret: TokenSecret, key: KeyInfo
    ) -> None:
        lifetime = key.lifetime_seconds
        record = state_tags.ExpiryRecord(version_id, secret.valid_until, lifetime, key.format)
        wanted = record.to_tag()
        if state.tags.get(state_tags.EXPIRY_TAG) != wanted:
            secrets.tag(self._sm, state.arn, {state_tags.EXPIRY_TAG: wanted})

    def _seconds_left(self, state: SecretState, current_id: str) -> int | None:
        """Seconds until the current key expires (None: never, or unknown), best effort: from
        the expiry tag when it names the current version, else from the value."""
        record = state_tags.parse_expiry(state.tags.get(state_tags.EXPIRY_TAG))
        if record is not None and record.version_id == current_id:
            valid_until = record.valid_until
        else:
            try:
                value = secrets.get_value(self._sm, state.arn, current_id)
                valid_until = parse_secret(state.name, value).valid_until
            except RotationError:
                return None
        return None if valid_until == 0 else int(valid_until - self._clock())

    def _sibling_rotated(self, arn: str, started_from: str, tokens: list[str]) -> bool:
        """After a refusal: did another rotation of this secret get there first?

        A sibling that won the refresh a moment ago may not have stored its key yet, so the
        secret is looked at a few times, a second apart, before the refusal counts as real.
        """
        for look in range(SIBLING_LOOKS):
            if look:
                self._sleep(SIBLING_PAUSE_SECONDS)
            fresh = secrets.describe(self._sm, arn)
            if fresh.current_version_id != started_from or fresh.pending_version_id in tokens:
                return True
        return False


def _tags_unwritten(state: SecretState, version_id: str) -> bool:
    """True when `version_id` is a rotation's own version (its id derives from the version
    now AWSPREVIOUS) and the expiry tag, written in the same call as last-rotated, does not
    name it yet."""
    previous = next(
        (v for v, stages in state.versions_to_stages.items() if "AWSPREVIOUS" in stages), None
    )
    if previous is None or version_id not in secrets.rotation_tokens(state.arn, previous):
        return False
    record = state_tags.parse_expiry(state.tags.get(state_tags.EXPIRY_TAG))
    return record is None or record.version_id != version_id


_NOT_REFRESHABLE_HINTS = {
    KeyFormat.V2: "generate a new v2 key and revoke the old one",
    KeyFormat.DISPOSABLE: "disposable tokens are short-lived by design; store a real API key",
}


def _lifetime(refreshed: RefreshedKey, now: float) -> int | None:
    if refreshed.valid_until == 0:
        return 0
    return max(0, round(refreshed.valid_until - now))


def _not_due_detail(seconds_left: int | None) -> str:
    if seconds_left is None:
        return "the key never expires"
    return f"not due: {seconds_left // 3600} h left"
