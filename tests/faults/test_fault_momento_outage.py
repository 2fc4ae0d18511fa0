"""Momento unavailable or slow for a while, then healthy: the key still rotates, once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from faults_support import World, check_invariants

pytestmark = pytest.mark.timeout(60)

FAILURES = 2


@pytest.mark.parametrize(
    ("method", "status", "delay", "env"),
    [
        pytest.param("refresh", grpc.StatusCode.UNAVAILABLE, 0.0, {}, id="refresh-unavailable"),
        pytest.param(
            "refresh", grpc.StatusCode.DEADLINE_EXCEEDED, 0.0, {}, id="refresh-deadline-exceeded"
        ),
        pytest.param(
            "refresh",
            grpc.StatusCode.UNAVAILABLE,
            1.5,
            {"MOMENTO_TIMEOUT_SECONDS": "0.5"},
            id="refresh-client-times-out",
        ),
        pytest.param("verify", grpc.StatusCode.UNAVAILABLE, 0.0, {}, id="verify-unavailable"),
    ],
)
def test_rotator_rotates_once_momento_recovers_from_an_outage(
    world: World,
    real_handler: Callable[..., Any],
    method: Any,
    status: grpc.StatusCode,
    delay: float,
    env: dict[str, str],
) -> None:
    # GIVEN a due secret, queued by the scanner
    secret = world.opted_in("app/outage")
    world.scan()
    # AND Momento failing (or too slow for) the next calls of one method, then healthy
    world.standin.inject_fault(method, status, count=FAILURES, delay_seconds=delay)
    handler = real_handler(**env)
    world.emulator.clear_call_counts()

    # WHEN the rotator drains the queue as Lambda would
    reports = world.drain(handler)

    # THEN the key was rotated, with a single refresh and a single write
    document = world.current_document(secret.name)
    assert document["apiKey"] != secret.key.stored_key  # type: ignore[union-attr]
    assert world.standin.is_accepted(document["apiKey"])
    assert len(world.grants) == 1
    calls = world.call_counts()
    assert calls.get("secretsmanager.PutSecretValue") == 1
    # AND each failed delivery was backed off, not retried hot
    assert calls.get("sqs.ChangeMessageVisibility") == FAILURES
    assert sum(report.failed for report in reports) == FAILURES
    retries = world.logs.with_message("rotation failed, will retry")
    assert [entry["retry_in_seconds"] for entry in retries] == [1, 2]
    # AND nothing reached the DLQ
    assert world.dead_letter_count() == 0
    check_invariants(world)
