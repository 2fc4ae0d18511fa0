"""The two Lambda entry points: thin wrappers around the domain."""

from __future__ import annotations

import functools
import io
import json
from types import SimpleNamespace

import pytest

from keyrotation import invocation, state_tags, telemetry
from keyrotation.invocation import UnsupportedEvent
from keyrotation.key_format import inspect_key
from keyrotation.processing import RecordProcessor
from keyrotation.rotation import Rotator
from keyrotation.settings import DAY
from rotator import handler as rotator_handler
from scanner import handler as scanner_handler


class LambdaContext:
    function_name = "momento-key-rotation"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:momento-key-rotation"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def wired_rotator(monkeypatch, sm, momento, sqs, settings, now):
    """The rotator's handler with fakes behind it, counting into the handler's own metrics."""
    rotator = Rotator(sm, momento, settings, clock=lambda: now)
    sink = functools.partial(invocation.count, rotator_handler.metrics)
    processor = RecordProcessor(rotator, sqs, settings, sink, clock=lambda: now)
    monkeypatch.setattr(rotator_handler, "_runtime", lambda: (rotator, processor))


@pytest.fixture
def log_lines(monkeypatch) -> io.StringIO:
    """Everything the functions log (Powertools binds its stream when the handler is imported)."""
    stream = io.StringIO()
    monkeypatch.setattr(rotator_handler.logger.registered_handler, "stream", stream)
    return stream


@pytest.fixture
def wired_scanner(monkeypatch, sm, sqs, settings, now):
    monkeypatch.setattr(scanner_handler, "_runtime", lambda: (settings, sm, sqs))
    monkeypatch.setattr(scanner_handler, "time", SimpleNamespace(time=lambda: now))


def test_rotator_handler_rotates_a_secret_named_in_a_direct_event(
    wired_rotator, sm, keys, capsys, log_lines
) -> None:
    # GIVEN a due secret and an operator's direct invocation
    original = json.loads(keys.due_v1_secret(days_left=2))
    arn = sm.create("momento/app", json.dumps(original))

    # WHEN the rotator is invoked
    answer = rotator_handler.lambda_handler(
        {"momento_auth_token_secret_name": "momento/app"}, LambdaContext()
    )

    # THEN the secret is rotated, the answer says so, and the outcome is a metric
    assert (answer["secretId"], answer["outcome"]) == (arn, "rotated")
    printed = capsys.readouterr().out + log_lines.getvalue()
    assert telemetry.ROTATION_SUCCEEDED in printed
    assert '"message":"rotated"' in printed

    # AND nothing the function printed (logs, metrics) carries key material, old or new
    stored = json.loads(sm.value_of(arn))
    for document in (original, stored):
        inner = inspect_key("momento/app", document["apiKey"], "t").inner_jwt
        for material in (document["apiKey"], inner, document["refreshToken"]):
            assert material not in printed


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_rotator_handler_refuses_a_native_rotation_event(wired_rotator) -> None:
    event = {"SecretId": "momento/app", "ClientRequestToken": "t", "Step": "createSecret"}
    with pytest.raises(UnsupportedEvent):
        rotator_handler.lambda_handler(event, LambdaContext())


def test_scanner_handler_scans_and_returns_the_summary(wired_scanner, sm, sqs, now) -> None:
    # GIVEN one secret inside its refresh window, recorded by an earlier rotation
    arn = sm.create("momento/app", "{}")
    record = state_tags.ExpiryRecord(
        sm.version_with(arn, "AWSCURRENT"), now + DAY, 30 * DAY, state_tags.KeyFormat.V1
    )
    sm.tag_resource(SecretId=arn, Tags=[{"Key": state_tags.EXPIRY_TAG, "Value": record.to_tag()}])

    # WHEN the scanner runs
    summary = scanner_handler.lambda_handler({}, LambdaContext())

    # THEN it enqueued the secret and reports what it saw
    assert (summary["scanned"], summary["due"], summary["enqueued"]) == (1, 1, 1)
    [[entry]] = sqs.batches
    assert json.loads(entry["MessageBody"])["secretArn"] == arn
