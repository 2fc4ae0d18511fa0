"""The rotation queue's message: identifiers only, read strictly."""

from __future__ import annotations

import json

import pytest

from keyrotation import messages
from keyrotation.messages import MalformedMessage, RotationRequest

ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/app-AbC123"
OTHER_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/other-XyZ789"
MESSAGE_ID = "0e5b7c52-3f44-4c8e-9f2a-6b9d7a1c0d11"


@pytest.mark.parametrize(
    "request_",
    [
        RotationRequest(ARN, "due", "momento/app", "v-1", 1_800_000_000, "2027-01-15T08:00:00Z"),
        RotationRequest(ARN, "manual"),
        RotationRequest(ARN, "inspect", secret_name="momento/app"),
    ],
    ids=["every-field", "only-required", "some-optional"],
)
def test_rotation_request_round_trips_through_its_body(request_: RotationRequest) -> None:
    assert messages.parse_body(MESSAGE_ID, request_.to_body()) == request_


@pytest.mark.parametrize("reason", sorted(messages.REASONS))
def test_parse_body_accepts_every_known_reason(reason: str) -> None:
    body = json.dumps({"v": 1, "secretArn": ARN, "reason": reason})
    assert messages.parse_body(MESSAGE_ID, body).reason == reason


def test_rotation_request_is_forced_only_when_an_operator_asked() -> None:
    forced = {reason for reason in messages.REASONS if RotationRequest(ARN, reason).force}
    assert forced == {"manual"}


MALFORMED_BODIES = {
    "not-json": "rotate momento/app please",
    "json-list": json.dumps([ARN, "due"]),
    "json-string": json.dumps(ARN),
    "no-version": json.dumps({"secretArn": ARN, "reason": "due"}),
    "future-version": json.dumps({"v": 2, "secretArn": ARN, "reason": "due"}),
    "no-secret-arn": json.dumps({"v": 1, "reason": "due"}),
    "secret-name-not-arn": json.dumps({"v": 1, "secretArn": "momento/app", "reason": "due"}),
    "secret-arn-not-a-string": json.dumps({"v": 1, "secretArn": 12, "reason": "due"}),
    "no-reason": json.dumps({"v": 1, "secretArn": ARN}),
    "unknown-reason": json.dumps({"v": 1, "secretArn": ARN, "reason": "because"}),
    "oversize": json.dumps(
        {"v": 1, "secretArn": ARN, "reason": "due", "padding": "x" * messages.MAX_BODY}
    ),
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_parse_body_refuses_what_this_tool_did_not_write(body: str) -> None:
    # GIVEN a body that is not a rotation request of this version
    # WHEN it is read
    with pytest.raises(MalformedMessage) as raised:
        messages.parse_body(MESSAGE_ID, body)

    # THEN the error names the message id, and is permanent
    assert raised.value.secret_id == MESSAGE_ID
    assert str(raised.value).startswith(MESSAGE_ID)
    assert raised.value.reason == "malformed-message"
    assert not raised.value.retryable


def test_parse_body_drops_optional_fields_of_the_wrong_type() -> None:
    # GIVEN a request whose optional fields have unexpected types
    body = json.dumps(
        {
            "v": 1,
            "secretArn": ARN,
            "reason": "due",
            "secretName": 5,
            "currentVersionId": "",
            "validUntil": "1800000000",
            "enqueuedAt": ["now"],
        }
    )

    # WHEN it is read
    # THEN they are treated as absent
    assert messages.parse_body(MESSAGE_ID, body) == RotationRequest(ARN, "due")


def test_group_id_is_stable_per_secret_and_differs_across_secrets() -> None:
    # GIVEN two requests for one secret, for different reasons, and one for another secret
    first = RotationRequest(ARN, "due", current_version_id="v-1")
    again = RotationRequest(ARN, "resume", current_version_id="v-2")
    other = RotationRequest(OTHER_ARN, "due", current_version_id="v-1")

    # THEN the secret alone decides the FIFO group, and a group id fits SQS (<= 128 chars)
    assert first.group_id() == again.group_id()
    assert first.group_id() != other.group_id()
    assert len(first.group_id()) <= 128


def _dedup(secret_id: str, reason: str, version_id: str) -> str:
    return RotationRequest(secret_id, reason, current_version_id=version_id).deduplication_id()


def test_deduplication_id_repeats_only_for_the_same_secret_version_and_reason() -> None:
    # GIVEN the id of a "due" request for version v-1
    base = _dedup(ARN, "due", "v-1")

    # THEN a repeat is deduplicated, and a new version, reason or secret is not
    assert _dedup(ARN, "due", "v-1") == base
    assert base not in {
        _dedup(ARN, "due", "v-2"),
        _dedup(ARN, "inspect", "v-1"),
        _dedup(OTHER_ARN, "due", "v-1"),
    }


def test_to_body_carries_identifiers_only() -> None:
    # GIVEN a request with every field set
    request = RotationRequest(
        ARN, "due", "momento/app", "v-1", 1_800_000_000, "2027-01-15T08:00:00Z"
    )

    # WHEN it becomes a message body
    body = json.loads(request.to_body())

    # THEN it holds exactly the documented identifier fields, and nothing key-like
    assert set(body) == {
        "v",
        "secretArn",
        "secretName",
        "reason",
        "currentVersionId",
        "validUntil",
        "enqueuedAt",
    }
    assert not {"apiKey", "authToken", "apiToken", "refreshToken"} & set(body)
    assert len(request.to_body()) <= messages.MAX_BODY
