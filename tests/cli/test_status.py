"""`momento-keys status`: each secret's state from its tags, and an exit code for people."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_support import DAY, Cli, Fleet

from momento_keys.errors import EXIT_ATTENTION, EXIT_OK

GET_VALUE = "secretsmanager.GetSecretValue"


def status_json(cli: Cli, *flags: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli("status", "--json", *flags)
    document = json.loads(result.out)
    return result.code, {entry["name"]: entry for entry in document["secrets"]}


@pytest.mark.parametrize(
    ("setup", "state", "needs_person"),
    [
        pytest.param({"days_left": 25}, "ok", False, id="ok"),
        pytest.param({"days_left": 5}, "due", False, id="due"),
        pytest.param({"days_left": 0.5}, "overdue", True, id="overdue"),
        pytest.param({"days_left": -1}, "expired", True, id="expired"),
        pytest.param({"days_left": 25, "form": "v2"}, "not-refreshable", False, id="v2-far"),
        pytest.param({"days_left": 5, "form": "v2"}, "not-refreshable", True, id="v2-near"),
        pytest.param(
            {"days_left": 25, "failure": "refresh-rejected"}, "failing", True, id="failing"
        ),
        pytest.param({"days_left": 25, "record": False}, "ok", False, id="untagged-read"),
        pytest.param({"value": "not json"}, "unknown", True, id="unknown-unreadable"),
    ],
)
def test_status_state_and_exit_code(
    cli: Cli, fleet: Fleet, setup: dict[str, Any], state: str, needs_person: bool
) -> None:
    # GIVEN one opted-in secret in the given condition
    if "value" in setup:
        fleet.add("app/key", setup["value"], record=False)
    else:
        key = fleet.key(days_left=setup["days_left"], form=setup.get("form", "v1"))
        fleet.add("app/key", key, record=setup.get("record", True), failure=setup.get("failure"))

    # WHEN the fleet's status is asked for
    code, secrets = status_json(cli)

    # THEN the state is reported, and the exit code says whether a person must act
    assert secrets["app/key"]["state"] == state
    assert secrets["app/key"]["needsPerson"] is needs_person
    assert code == (EXIT_ATTENTION if needs_person else EXIT_OK)


def test_status_does_not_read_values_when_the_tag_names_the_current_version(
    cli: Cli, fleet: Fleet, aws: Any
) -> None:
    # GIVEN secrets whose expiry records all name their current version
    for index, days_left in enumerate((25, 5, 0.5, -1)):
        fleet.add(f"tagged/{index}", fleet.key(days_left=days_left))
    aws.clear_call_counts()

    # WHEN the status is shown
    result = cli("status")

    # THEN not a single value was read
    assert aws.call_counts().get(GET_VALUE, 0) == 0
    assert result.code == EXIT_ATTENTION
    assert "4 opted-in secrets" in result.out


def test_status_reads_only_the_values_without_a_current_record(
    cli: Cli, fleet: Fleet, sm: Any, aws: Any
) -> None:
    # GIVEN one tagged secret, and one whose record names a version that is no longer current
    fleet.add("tagged", fleet.key(days_left=25))
    fleet.add("stale", fleet.key(days_left=25))
    sm.put_secret_value(
        SecretId="stale", SecretString=json.dumps(fleet.key(days_left=4).as_token_file())
    )
    aws.clear_call_counts()

    # WHEN the status is shown
    code, secrets = status_json(cli)

    # THEN only the stale one was read, and its state comes from its current value
    assert aws.call_counts().get(GET_VALUE, 0) == 1
    assert secrets["tagged"]["expirySource"] == "tag"
    assert secrets["stale"]["expirySource"] == "value"
    assert secrets["stale"]["state"] == "due"
    assert code == EXIT_OK


def test_status_no_read_values_shows_unknown_without_reading(
    cli: Cli, fleet: Fleet, aws: Any
) -> None:
    # GIVEN a secret with no expiry record at all
    fleet.add("untagged", fleet.key(days_left=25), record=False)
    aws.clear_call_counts()

    # WHEN the status is shown without reading values
    code, secrets = status_json(cli, "--no-read-values")

    # THEN it is unknown, nothing was read, and that alone needs no person
    assert secrets["untagged"]["state"] == "unknown"
    assert aws.call_counts().get(GET_VALUE, 0) == 0
    assert code == EXIT_OK


def test_status_table_is_aligned_and_shows_time_left_and_last_rotation(
    cli: Cli, fleet: Fleet
) -> None:
    # GIVEN a rotated secret and a due one
    fleet.add("a/rotated", fleet.key(days_left=25), last_rotated="2026-11-01T10:00:00Z")
    fleet.add("b/due", fleet.key(days_left=5))

    # WHEN the status is shown as a table
    result = cli("status")

    # THEN the columns line up, with human time left and the last rotation
    header, first, second, summary = result.out.splitlines()
    assert header.startswith("NAME")
    column = header.index("STATE")
    assert first[column:].startswith("ok") and second[column:].startswith("due")
    assert "24d 23h" in first or "24d 22h" in first
    assert "2026-11-01T10:00:00Z" in first and "never" in second
    assert summary == "2 opted-in secrets: 1 due, 1 ok; none needs a person"


def test_status_with_no_opted_in_secrets_says_so(cli: Cli, fleet: Fleet) -> None:
    # GIVEN only a secret without the opt-in tag
    fleet.add("not-mine", fleet.key(days_left=25), opt_in=False)

    # WHEN the status is shown
    result = cli("status")

    # THEN it says nothing is opted in, and exits 0
    assert result.code == EXIT_OK
    assert result.out == "no secrets carry the tag momento-token\n"


def test_status_json_keeps_stdout_parseable_and_the_summary_on_stderr(
    cli: Cli, fleet: Fleet
) -> None:
    # GIVEN an expired secret
    fleet.add("gone", fleet.key(days_left=-2))

    # WHEN the status is asked for as JSON
    result = cli("status", "--json")

    # THEN stdout is one JSON document, and the summary line is on stderr
    document = json.loads(result.out)
    assert document["needsPerson"] == 1
    assert document["secrets"][0]["validUntil"].endswith("Z")
    assert document["secrets"][0]["secondsLeft"] < -DAY
    assert "1 need a person" in result.err
