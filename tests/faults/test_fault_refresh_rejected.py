"""Momento refuses the refresh itself: dead-lettered once, secret untouched, no retry storm."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from faults_support import DAY, World, check_invariants

from keyrotation.key_format import inspect_key
from keyrotation.momento_auth import MomentoAuth
from keyrotation.state_tags import FAILURE_TAG, parse_failure

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("quick_sibling_looks")]


def _unauthenticated(world: World, name: str) -> int:
    world.opted_in(name)
    world.standin.inject_fault("refresh", grpc.StatusCode.UNAUTHENTICATED, count=10)
    return 0


def _token_already_used(world: World, name: str) -> int:
    # Someone refreshed this key with another tool and never stored the answer.
    key = world.mint()
    world.opted_in(name, key)
    momento = MomentoAuth(world.standin.address)
    assert key.refresh_token is not None
    momento.refresh(name, inspect_key(name, key.stored_key, key.refresh_token), key.refresh_token)
    momento.close()
    return 1


def _revoked(world: World, name: str) -> int:
    key = world.mint()
    world.opted_in(name, key)
    world.standin.revoke(key.stored_key)
    return 0


def _expired_at_momento(world: World, name: str) -> int:
    # The stored validUntil claims days are left, but Momento knows the key has expired.
    key = world.mint(age_days=31)
    world.opted_in(name, key, validUntil=str(int(time.time() + 5 * DAY)))
    return 0


def _expired_by_its_valid_until(world: World, name: str) -> int:
    world.opted_in(name, world.mint(age_days=31))
    return 0


CASES = {
    "unauthenticated": (_unauthenticated, "refresh-rejected", 1),
    "refresh-token-already-used": (_token_already_used, "refresh-rejected", 1),
    "key-revoked": (_revoked, "refresh-rejected", 1),
    "key-expired-at-momento": (_expired_at_momento, "refresh-rejected", 1),
    "key-expired-by-its-valid-until": (_expired_by_its_valid_until, "key-expired", 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rotator_dead_letters_a_refused_refresh_once_and_keeps_the_secret(
    world: World, real_handler: Callable[..., Any], case: str
) -> None:
    # GIVEN a due secret whose refresh Momento will refuse, queued by the scanner
    arrange, reason, refreshes = CASES[case]
    name = f"app/{case}"
    lost = arrange(world, name)
    world.rebaseline(name)
    world.scan()
    handler = real_handler()
    calls_before = world.refresh_calls

    # WHEN the rotator drains the queue
    reports = world.drain(handler)

    # THEN the message reached the DLQ exactly once, naming the secret and the problem
    letters = world.dead_letters()
    assert [letter.reason for letter in letters] == [reason]
    assert letters[0].secret_arn == world.seeded[name].arn
    assert name in letters[0].detail
    # AND it was delivered once and never again: no retry storm against Momento
    assert sum(report.received for report in reports) == 1
    assert world.refresh_calls - calls_before == refreshes
    # AND the stored key and its version are exactly as they were
    view, baseline = world.view(name), world.baselines[name]
    assert view is not None
    assert (view.current_id, view.current_value) == (baseline.current_id, baseline.current_value)
    # AND the failure is recorded on the secret, so the next scan leaves it to a person
    failure = parse_failure(view.tags.get(FAILURE_TAG))
    assert failure is not None and failure.reason == reason
    assert failure.version_id == baseline.current_id
    assert world.scan()["enqueued"] == 0
    world.rebaseline(name)  # the failure tag is the product's own, expected change
    check_invariants(world, lost_grants=lost)


def test_rotator_dead_letters_a_refused_refresh_without_exposing_its_detail(
    world: World, real_handler: Callable[..., Any]
) -> None:
    # GIVEN Momento refusing a refresh with a message that echoes what the request carried
    key = world.mint()
    world.opted_in("app/echo", key)
    echo = f"refresh token {key.refresh_token} does not belong to api key {key.inner_jwt}"
    world.standin.inject_fault("refresh", grpc.StatusCode.UNAUTHENTICATED, message=echo)
    world.scan()

    # WHEN the rotator handles it
    world.drain(real_handler())

    # THEN the DLQ entry names the refusal, and nothing secret reached any output
    (letter,) = world.dead_letters()
    assert letter.reason == "refresh-rejected"
    assert "UNAUTHENTICATED" in letter.detail
    world.rebaseline("app/echo")
    check_invariants(world)
