"""The whole loop, scanner → queue → rotator → DLQ, as the demo runs it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from localenv.fleet import build_fleet, check, seed, snapshot
from localenv.loop import LocalLoop
from localenv.momento_standin import MomentoStandIn

pytestmark = pytest.mark.timeout(240)


FleetRun = tuple[list[Any], dict[str, Any], dict[str, Any], dict[str, str]]


@pytest.fixture(scope="module")
def fleet_run(
    emulator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalLoop, FleetRun]]:
    """One full run of the demo fleet, shared by the tests that only read its results."""
    emulator.reset()
    with MomentoStandIn() as standin:
        loop = LocalLoop(emulator, standin, tmp_path_factory.mktemp("fleet"))
        loop.provision()
        try:
            yield loop, _run_fleet(loop)
        finally:
            loop.stop_rotators()


def _run_fleet(loop: LocalLoop) -> FleetRun:
    secrets_client = loop.client("secretsmanager")
    fleet = build_fleet(loop.standin, time.time(), loop.config.tag_key)
    seed(secrets_client, fleet)
    before = {s.name: snapshot(secrets_client, s.name) for s in fleet}
    loop.start_rotators()
    loop.run_scanner()
    assert loop.wait_until_drained(timeout=120), "the rotation queue never drained"
    loop.stop_rotators()
    after = {s.name: snapshot(secrets_client, s.name) for s in fleet}
    letters = {
        d.secret.split(":secret:")[1].rsplit("-", 1)[0]: d.reason for d in loop.dead_letters()
    }
    return fleet, before, after, letters


def test_loop_rotates_every_due_key_and_dead_letters_every_broken_one(
    fleet_run: tuple[LocalLoop, FleetRun],
) -> None:
    # GIVEN the demo fleet: due keys of every format and spelling, fresh keys, broken secrets,
    # and bystanders that are untagged, prefix-tagged or being deleted
    # WHEN the scanner runs while the rotators drain the queue
    loop, (fleet, before, after, letters) = fleet_run

    # THEN every secret ended as the fleet says it must
    assert check(fleet, before, after, letters, loop.standin.is_accepted) == []
    # AND each due key was refreshed exactly once
    assert len(loop.standin.grants) == sum(1 for s in fleet if s.expect == "rotated")


def test_loop_keeps_every_secret_out_of_every_log_line(
    fleet_run: tuple[LocalLoop, FleetRun],
) -> None:
    # GIVEN a full run of the demo fleet
    loop, (fleet, _, after, _) = fleet_run

    # WHEN every log line the functions wrote is read, metrics included
    logs = loop.log_text()

    # THEN no key or refresh token the stand-in ever issued, and no stored value, is in them
    assert "RotationSucceeded" in logs, "the capture must hold the functions' metric lines"
    secrets = set(loop.standin.all_secret_strings())
    for state in after.values():
        if state.value:
            secrets.add(state.value)
    for secret in fleet:
        if secret.value:
            secrets.add(secret.value)
    leaked = sorted(s for s in secrets if len(s) > 8 and s in logs)
    assert leaked == [], f"{len(leaked)} secret strings leaked into the logs"


def test_scanner_decides_from_tags_alone_once_keys_are_known(
    fleet_run: tuple[LocalLoop, FleetRun],
) -> None:
    # GIVEN a fleet the loop has been through once, so each current version carries its record
    loop, _ = fleet_run
    loop.emulator.clear_call_counts()

    # WHEN the scanner runs again
    summary = loop.run_scanner()

    # THEN it enqueues nothing, reads no secret value, reports the expired key as expired
    # (even though its rotation failed) and the other broken ones as failing
    calls = loop.emulator.call_counts()
    assert summary["enqueued"] == 0
    assert calls.get("secretsmanager.GetSecretValue", 0) == 0
    assert (summary["expired"], summary["failing"]) == (1, 6)
    assert summary["ok"] == summary["scanned"] - 7


def test_rotator_direct_invocation_accepts_both_legacy_event_shapes(
    loop: LocalLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two opted-in secrets whose keys are far from expiry
    secrets_client = loop.client("secretsmanager")
    names = ["direct/secret-id", "direct/legacy-name"]
    for name in names:
        key = loop.standin.mint_key(30 * 86_400)
        secrets_client.create_secret(
            Name=name,
            SecretString=json.dumps(key.as_token_file()),
            Tags=[{"Key": "momento-token", "Value": "yes"}],
        )
    for variable, value in loop.function_env("rotator").items():
        monkeypatch.setenv(variable, value)
    from localenv.lambda_runtime import LambdaContext
    from rotator import handler

    handler._runtime.cache_clear()
    try:
        # WHEN an operator invokes the rotator with each shape the older Lambda documented
        results = [
            handler.lambda_handler({"SecretId": names[0]}, LambdaContext()),
            handler.lambda_handler({"momento_auth_token_secret_name": names[1]}, LambdaContext()),
        ]
    finally:
        handler._runtime.cache_clear()

    # THEN both rotate now, even though neither key was due
    assert [r["outcome"] for r in results] == ["rotated", "rotated"]
    for name in names:
        value = json.loads(secrets_client.get_secret_value(SecretId=name)["SecretString"])
        assert loop.standin.is_accepted(value["apiKey"])
    assert len(loop.standin.grants) == 2
