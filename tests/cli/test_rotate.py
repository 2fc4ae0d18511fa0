"""`momento-keys rotate`: one secret, now, through the rotator's own code path."""

from __future__ import annotations

import json
from typing import Any

import grpc
from cli_support import TAG_KEY, Cli, Fleet

from keyrotation import state_tags
from localenv.momento_standin import MomentoStandIn


def test_rotate_refreshes_a_due_key_through_the_standin(
    cli: Cli, fleet: Fleet, sm: Any, standin: MomentoStandIn
) -> None:
    # GIVEN a due key with an application's extra field, and validUntil as a string
    key = fleet.key(days_left=5)
    fleet.add("app/momento", json.dumps({**key.as_token_file(), "owner": "payments"}))
    grants_before = len(standin.grants)

    # WHEN it is rotated by hand against the stand-in
    result = cli("--momento-endpoint", standin.address, "rotate", "app/momento")

    # THEN Momento granted one refresh, the new key is current and live, the shape is kept,
    # and the expiry record and last rotation are tagged
    assert result.code == 0, result.err
    assert len(standin.grants) == grants_before + 1
    stored = json.loads(sm.get_secret_value(SecretId="app/momento")["SecretString"])
    assert stored["apiKey"] != key.stored_key and standin.is_accepted(stored["apiKey"])
    assert stored["owner"] == "payments" and isinstance(stored["validUntil"], str)
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId="app/momento")["Tags"]}
    assert state_tags.LAST_ROTATED_TAG in tags and TAG_KEY in tags
    assert result.out.startswith("rotated app/momento: new key stored and current")
    assert result.out.count("\n") == 1


def test_rotate_also_rotates_a_key_that_is_not_due(
    cli: Cli, fleet: Fleet, standin: MomentoStandIn
) -> None:
    # GIVEN a key with most of its life left
    fleet.add("fresh", fleet.key(days_left=28))

    # WHEN it is rotated by hand, with the option given after the subcommand
    result = cli("rotate", "fresh", "--momento-endpoint", standin.address)

    # THEN a manual rotation refreshes it anyway
    assert result.code == 0, result.err
    assert result.out.startswith("rotated fresh")


def test_rotate_an_unknown_secret_fails_in_one_line(cli: Cli, fleet: Fleet) -> None:
    # GIVEN no such secret
    # WHEN it is rotated
    result = cli("rotate", "no/such/secret")

    # THEN one line on stderr names it and says why, and the exit code is 1
    assert result.code == 1
    assert (
        result.err
        == "momento-keys: error: no/such/secret: not rotated: the secret does not exist\n"
    )
    assert result.out == ""


def test_rotate_an_expired_key_names_the_secret_and_the_cause(
    cli: Cli, fleet: Fleet, standin: MomentoStandIn
) -> None:
    # GIVEN a key that has expired
    fleet.add("expired", fleet.key(days_left=-1))

    # WHEN it is rotated
    result = cli("--momento-endpoint", standin.address, "rotate", "expired")

    # THEN it fails with the secret, the cause and the reason, and no traceback
    assert result.code == 1
    assert result.err.startswith("momento-keys: error: expired: the key has expired")
    assert "(key-expired)" in result.err
    assert "Traceback" not in result.err and result.err.count("\n") == 1


def test_rotate_reports_momento_refusing_the_refresh(
    cli: Cli, fleet: Fleet, standin: MomentoStandIn, monkeypatch: Any
) -> None:
    # GIVEN a due key whose refresh Momento refuses (the sibling check is not waited for)
    fleet.add("refused", fleet.key(days_left=5))
    monkeypatch.setattr("keyrotation.rotation.SIBLING_PAUSE_SECONDS", 0.0)
    standin.inject_fault("refresh", grpc.StatusCode.UNAUTHENTICATED)

    # WHEN it is rotated
    result = cli("--momento-endpoint", standin.address, "rotate", "refused")

    # THEN the failure names the secret and Momento's answer
    assert result.code == 1
    assert "refused: Momento refused the refresh: UNAUTHENTICATED" in result.err
    assert "(refresh-rejected)" in result.err
