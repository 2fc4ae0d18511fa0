"""`status`: the expiry state of every opted-in secret, and whether any needs a person.

The state of a secret comes from the rotator's tags whenever they describe the version that
holds AWSCURRENT: then no value is read. Only a secret without such a record has its current
value read (and with `--no-read-values`, not even then).

| state           | meaning                                                 | needs a person  |
| --------------- | ------------------------------------------------------- | --------------- |
| ok              | outside its refresh window, or never expires            | no              |
| due             | inside its refresh window: the rotator will refresh it  | no              |
| overdue         | due, with less left than the minimum refresh window     | yes             |
| expired         | `validUntil` has passed: only a new key helps           | yes             |
| not-refreshable | a v2 key, a disposable token, or no refresh token       | when due        |
| failing         | the rotator's last attempt on this version failed       | yes             |
| unknown         | no expiry record for the current version, value unread  | if a read failed |

`overdue` means the rotator has had its chance and may no longer finish in time: the minimum
window is the time three missed scans plus every retry of one message take (at least a day with
the defaults). A key whose whole refresh window is shorter than that (a lifetime under about
two days) is overdue as soon as it is due.

NOTE: the windows come from this process's settings (`REFRESH_WINDOW_SECONDS`,
`SCAN_INTERVAL_SECONDS`, `MAX_RECEIVE_COUNT`, `BACKOFF_BASE_SECONDS`, else the defaults), not
from the deployed functions. Set the same variables where the stack overrides them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from keyrotation import secrets, state_tags
from keyrotation.due import Urgency, assess
from keyrotation.errors import AwsUnavailable, RotationError
from keyrotation.key_format import REFRESHABLE_FORMATS, inspect_key
from keyrotation.secret_value import parse_secret
from keyrotation.secrets import SecretState
from keyrotation.settings import Settings
from momento_keys import output
from momento_keys.deployment import Deployment
from momento_keys.errors import EXIT_ATTENTION, EXIT_OK, unreachable


class State(StrEnum):
    OK = "ok"
    DUE = "due"
    OVERDUE = "overdue"
    EXPIRED = "expired"
    NOT_REFRESHABLE = "not-refreshable"
    FAILING = "failing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Expiry:
    """What is known about the current key. `source` is `tag` or `value`."""

    valid_until: int
    lifetime_seconds: int | None
    key_format: str
    refreshable: bool
    source: str


@dataclass(frozen=True)
class SecretStatus:
    name: str
    arn: str
    state: State
    detail: str
    needs_person: bool
    expiry: Expiry | None = None
    seconds_left: int | None = None
    last_rotated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        expiry = self.expiry
        return {
            "name": self.name,
            "arn": self.arn,
            "state": self.state.value,
            "needsPerson": self.needs_person,
            "detail": self.detail,
            "keyFormat": expiry.key_format if expiry else None,
            "validUntil": _valid_until_text(expiry),
            "validUntilEpoch": expiry.valid_until if expiry else None,
            "secondsLeft": self.seconds_left,
            "lastRotated": self.last_rotated,
            "expirySource": expiry.source if expiry else None,
        }

    def row(self) -> list[str]:
        expiry = self.expiry
        valid_until = expiry.valid_until if expiry else None
        return [
            self.name,
            expiry.key_format if expiry else "?",
            _valid_until_text(expiry) or "?",
            output.time_left(valid_until, self.seconds_left),
            self.state.value + (" !" if self.needs_person else ""),
            self.last_rotated or "never",
            self.detail,
        ]


HEADERS = ["NAME", "FORMAT", "VALID UNTIL (UTC)", "LEFT", "STATE", "LAST ROTATED", "DETAIL"]


def run(deployment: Deployment, *, read_values: bool, as_json: bool) -> int:
    client = deployment.client("secretsmanager")
    settings = deployment.settings
    now = time.time()
    try:
        statuses = [
            status_of(client, state, settings, now, read_values=read_values)
            for state in secrets.list_opted_in_secrets(client, settings.tag_key)
        ]
    except AwsUnavailable as error:
        raise unreachable(f"secrets tagged {settings.tag_key}", error, client) from None
    statuses.sort(key=lambda status: status.name)

    attention = sum(status.needs_person for status in statuses)
    if as_json:
        output.print_json(
            {"secrets": [status.as_dict() for status in statuses], "needsPerson": attention}
        )
    elif statuses:
        output.print_table(HEADERS, [status.row() for status in statuses])
    output.summary(_summary_line(statuses, settings.tag_key, attention), as_json=as_json)
    return EXIT_ATTENTION if attention else EXIT_OK


def status_of(
    client: Any, state: SecretState, settings: Settings, now: float, *, read_values: bool
) -> SecretStatus:
    """Classify one listed secret; reads its value only when no tag describes its version."""
    last_rotated = state.tags.get(state_tags.LAST_ROTATED_TAG) or None
    current = state.current_version_id
    if current is None:
        detail = "no AWSCURRENT version"
        return SecretStatus(
            state.name, state.arn, State.UNKNOWN, detail, True, None, None, last_rotated
        )

    expiry, problem = _expiry_from_tag(state, current), None
    if expiry is None and read_values:
        expiry, problem = _expiry_from_value(client, state, current)

    status = _classify(state, expiry, problem, read_values, settings, now)
    pending = state.pending_version_id
    if pending is not None and pending != current:
        status = _with_note(status, "a rotation is in progress (AWSPENDING)")
    return replace(status, last_rotated=last_rotated)


def _classify(
    state: SecretState,
    expiry: Expiry | None,
    problem: str | None,
    read_values: bool,
    settings: Settings,
    now: float,
) -> SecretStatus:
    def make(kind: State, detail: str, person: bool, left: int | None = None) -> SecretStatus:
        return SecretStatus(state.name, state.arn, kind, detail, person, expiry, left)

    failure = state_tags.parse_failure(state.tags.get(state_tags.FAILURE_TAG))
    failing = failure is not None and failure.version_id == state.current_version_id
    if expiry is None:
        if failing and failure is not None:
            return make(State.FAILING, _failing_detail(failure), True)
        if problem is not None:
            return make(State.UNKNOWN, f"could not read the value: {problem}", True)
        why = "not read (--no-read-values)" if not read_values else "no expiry record"
        return make(State.UNKNOWN, f"{why}; the next scan sends it to the rotator", False)

    assessment = assess(expiry.valid_until, expiry.lifetime_seconds, settings, now)
    left = assessment.seconds_left
    if assessment.urgency is Urgency.EXPIRED:
        return make(State.EXPIRED, "expired: import a new key from the Momento console", True, left)
    if failing and failure is not None:
        return make(State.FAILING, _failing_detail(failure), True, left)
    if assessment.urgency is Urgency.NEVER_EXPIRES:
        return make(State.OK, "never expires", False, left)
    if not expiry.refreshable:
        why = _not_refreshable_detail(expiry)
        return make(State.NOT_REFRESHABLE, why, assessment.needs_refresh, left)
    if assessment.urgency is Urgency.DUE:
        if assessment.overdue:
            limit = output.duration(settings.minimum_refresh_window_seconds)
            detail = f"due and under {limit} left: rotation may not finish in time"
            return make(State.OVERDUE, detail, True, left)
        window = output.duration(assessment.window_seconds)
        return make(State.DUE, f"inside its {window} refresh window", False, left)
    return make(State.OK, "", False, left)


def _expiry_from_tag(state: SecretState, current: str) -> Expiry | None:
    record = state_tags.parse_expiry(state.tags.get(state_tags.EXPIRY_TAG))
    if record is None or record.version_id != current:
        return None
    refreshable = record.key_format in REFRESHABLE_FORMATS
    return Expiry(
        record.valid_until, record.lifetime_seconds, record.key_format.value, refreshable, "tag"
    )


def _expiry_from_value(
    client: Any, state: SecretState, current: str
) -> tuple[Expiry | None, str | None]:
    """Read the current value to learn its expiry; the value itself goes no further."""
    try:
        secret = parse_secret(state.name, secrets.get_value(client, state.arn, current))
        key = inspect_key(state.name, secret.api_key, secret.refresh_token)
    except RotationError as error:
        return None, error.detail
    refreshable = key.format in REFRESHABLE_FORMATS and secret.refresh_token is not None
    expiry = Expiry(
        secret.valid_until, key.lifetime_seconds, key.format.value, refreshable, "value"
    )
    return expiry, None


def _with_note(status: SecretStatus, note: str) -> SecretStatus:
    return replace(status, detail=f"{status.detail}; {note}" if status.detail else note)


def _failing_detail(failure: state_tags.FailureRecord) -> str:
    when = f" at {failure.at}" if failure.at else ""
    return f"last rotation failed ({failure.reason}){when}: see `momento-keys dlq list`"


def _not_refreshable_detail(expiry: Expiry) -> str:
    if expiry.key_format in {fmt.value for fmt in REFRESHABLE_FORMATS}:
        return "no refresh token: replace the key before it expires"
    return f"a {expiry.key_format} key cannot be refreshed: replace it before it expires"


def _valid_until_text(expiry: Expiry | None) -> str | None:
    if expiry is None:
        return None
    return "never" if expiry.valid_until == 0 else output.utc(expiry.valid_until)


def _summary_line(statuses: list[SecretStatus], tag_key: str, attention: int) -> str:
    if not statuses:
        return f"no secrets carry the tag {tag_key}"
    counts = Counter(status.state.value for status in statuses)
    parts = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    people = f"{attention} need a person" if attention else "none needs a person"
    return f"{output.count(len(statuses), 'opted-in secret')}: {parts}; {people}"
