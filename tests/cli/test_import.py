"""`momento-keys import`: a downloaded key becomes an opted-in secret, or nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_support import DAY, TAG_KEY, Cli, Fleet

from keyrotation import state_tags


def tags_of(sm: Any, name: str) -> dict[str, str]:
    described = sm.describe_secret(SecretId=name)
    return {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}


def current_version(sm: Any, name: str) -> str:
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    return str(next(version for version, labels in stages.items() if "AWSCURRENT" in labels))


def test_import_creates_opted_in_secret_with_file_text_and_expiry_tag(
    cli: Cli, fleet: Fleet, sm: Any
) -> None:
    # GIVEN a console download whose validUntil is a string, written with its own spacing
    key = fleet.key(days_left=20)
    text = json.dumps(key.as_token_file(), indent=4) + "\n"
    path = fleet.token_file(text)

    # WHEN it is imported
    result = cli("import", str(path), "--name", "momento/authentication-token")

    # THEN the secret holds the file's exact text, carries the opt-in tag, and its expiry record
    # names the current version, so the scanner knows the expiry without reading the value
    assert result.code == 0, result.err
    assert sm.get_secret_value(SecretId="momento/authentication-token")["SecretString"] == text
    tags = tags_of(sm, "momento/authentication-token")
    assert TAG_KEY in tags
    record = state_tags.parse_expiry(tags[state_tags.EXPIRY_TAG])
    assert record is not None
    assert record.version_id == current_version(sm, "momento/authentication-token")
    assert record.valid_until == key.valid_until
    assert record.key_format == "v1"
    assert "created the secret" in result.out
    assert result.out.count("\n") == 1


def test_import_adds_a_version_and_the_missing_tag_to_an_existing_secret(
    cli: Cli, fleet: Fleet, sm: Any
) -> None:
    # GIVEN an existing secret that is not opted in, with an application's extra field
    old = fleet.key(days_left=2)
    fleet.add("prod/momento", old, record=False, opt_in=False)
    new = fleet.key(days_left=29)
    path = fleet.token_file({**new.as_token_file(), "owner": "payments"})

    # WHEN the new download is imported over it
    result = cli("import", str(path), "--name", "prod/momento", "--description", "cache key")

    # THEN the new text is the current version, the tag was added, the description set
    assert result.code == 0, result.err
    stored = json.loads(sm.get_secret_value(SecretId="prod/momento")["SecretString"])
    assert stored == {**new.as_token_file(), "owner": "payments"}
    tags = tags_of(sm, "prod/momento")
    assert TAG_KEY in tags
    assert f"added the tag {TAG_KEY}" in result.out
    record = state_tags.parse_expiry(tags[state_tags.EXPIRY_TAG])
    assert record is not None and record.version_id == current_version(sm, "prod/momento")
    assert sm.describe_secret(SecretId="prod/momento")["Description"] == "cache key"


def test_import_of_the_same_file_twice_stores_one_version(cli: Cli, fleet: Fleet, sm: Any) -> None:
    # GIVEN a file already imported
    path = fleet.token_file(fleet.key(days_left=20).as_token_file())
    assert cli("import", str(path), "--name", "twice").code == 0

    # WHEN it is imported again
    result = cli("import", str(path), "--name", "twice")

    # THEN it succeeds and the secret still has a single version
    assert result.code == 0, result.err
    assert len(sm.list_secret_version_ids(SecretId="twice")["Versions"]) == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "no such file", id="missing-file"),
        pytest.param("{not json", "not valid JSON", id="not-json"),
        pytest.param('["a list"]', "not an object", id="json-array"),
        pytest.param({"refreshToken": "x", "validUntil": "1"}, "no apiKey", id="no-key"),
        pytest.param({"apiKey": "plain-text", "validUntil": "0"}, "neither a JWT", id="not-a-key"),
        pytest.param("milliseconds", "milliseconds", id="milliseconds"),
        pytest.param("expired", "expired at", id="expired"),
    ],
)
def test_import_refuses_a_bad_file_and_writes_nothing(
    cli: Cli, fleet: Fleet, sm: Any, aws: Any, content: Any, problem: str
) -> None:
    # GIVEN a file with one problem
    if content == "milliseconds":
        key = fleet.key(days_left=20)
        content = {**key.as_token_file(), "validUntil": key.valid_until * 1000}
    elif content == "expired":
        content = fleet.key(days_left=-1).as_token_file()
    path = fleet.tmp_path / "absent.json" if content is None else fleet.token_file(content)

    # WHEN it is imported
    result = cli("import", str(path), "--name", "refused")

    # THEN one line on stderr names the file and the problem; Secrets Manager was not called
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert str(path) in result.err and problem in result.err
    assert "Traceback" not in result.err
    assert not [op for op in aws.call_counts() if op.startswith("secretsmanager.")]
    assert sm.list_secrets()["SecretList"] == []


@pytest.mark.parametrize(
    ("form", "strip_refresh_token", "warning"),
    [
        pytest.param("v2", False, "a v2 key has no refresh protocol", id="v2-key"),
        pytest.param("disposable", False, "a disposable key", id="disposable-token"),
        pytest.param("v1", True, "no refreshToken", id="no-refresh-token"),
    ],
)
def test_import_warns_but_stores_a_key_that_cannot_be_refreshed(
    cli: Cli, fleet: Fleet, sm: Any, form: str, strip_refresh_token: bool, warning: str
) -> None:
    # GIVEN a key the rotator will never be able to refresh
    lifetime = DAY // 2 if form == "disposable" else 30 * DAY
    key = fleet.key(days_left=0.25 if form == "disposable" else 20, form=form, lifetime=lifetime)
    content = key.as_token_file()
    if strip_refresh_token:
        content.pop("refreshToken")
    path = fleet.token_file(content)

    # WHEN it is imported
    result = cli("import", str(path), "--name", f"manual/{form}")

    # THEN it is stored, with a warning that it will not be refreshed automatically
    assert result.code == 0, result.err
    assert warning in result.err
    assert "will not be refreshed automatically" in result.err
    assert sm.describe_secret(SecretId=f"manual/{form}")["Name"] == f"manual/{form}"
