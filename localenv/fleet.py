"""A realistic fleet of secrets for the local loop, each with what must become of it.

Every entry says what the loop must do to it: `rotated` (a new current version holding a key
the stand-in issued, in the same shape), `unchanged` (the value and version stay exactly as
they were: not due, never expires, or not opted in), or `dead-lettered:<reason>` (left as it
was, with a DLQ entry naming it and the reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localenv.momento_standin import IssuedKey, KeyForm, MomentoStandIn, Scope

DAY = 86_400
LIFETIME = 30 * DAY  # a common console choice; the default window is then 10 days


@dataclass(frozen=True)
class FleetSecret:
    name: str
    expect: str
    value: str | None = field(repr=False)
    tags: dict[str, str]
    note: str
    key_field: str = "apiKey"
    scheduled_for_deletion: bool = False


@dataclass
class Snapshot:
    version_id: str | None
    value: str | None = field(repr=False)
    stages: dict[str, list[str]]
    tags: dict[str, str]


def build_fleet(
    standin: MomentoStandIn, now: float, tag_key: str = "momento-token", scale: int = 1
) -> list[FleetSecret]:
    """The demo fleet: refreshable keys due and not, every kind of broken, and bystanders."""
    opt_in = {tag_key: "demo", "team": "platform"}
    fleet: list[FleetSecret] = []

    def key(
        form: KeyForm, age_days: float, lifetime: int = LIFETIME, scope: Scope = "all"
    ) -> IssuedKey:
        return standin.mint_key(lifetime, form=form, issued_at=now - age_days * DAY, scope=scope)

    def add(
        name: str,
        expect: str,
        document: dict[str, Any] | str | None,
        note: str,
        tags: dict[str, str] | None = None,
        key_field: str = "apiKey",
        scheduled_for_deletion: bool = False,
    ) -> None:
        value = document if isinstance(document, str) or document is None else json.dumps(document)
        fleet.append(
            FleetSecret(
                name,
                expect,
                value,
                dict(opt_in if tags is None else tags),
                note,
                key_field,
                scheduled_for_deletion,
            )
        )

    def console(
        k: IssuedKey, field_name: str = "apiKey", number: bool = False, **extra: Any
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            field_name: k.stored_key,
            "refreshToken": k.refresh_token,
            "validUntil": k.valid_until if number else str(k.valid_until),
        }
        document.update(extra)
        return document

    for i in range(6 * scale):
        add(f"demo/due/v1-{i:02d}", "rotated", console(key("v1", 25)), "v1 key, 5 days left")
    for i in range(3 * scale):
        add(
            f"demo/due/legacy-{i:02d}",
            "rotated",
            console(key("legacy", 26), number=True),
            "legacy JWT key, validUntil as a number",
        )
    for i in range(2 * scale):
        add(
            f"demo/due/authtoken-{i:02d}",
            "rotated",
            console(key("v1", 24), "authToken"),
            "written by the older rotation Lambda (authToken)",
            key_field="authToken",
        )
    add(
        "demo/due/apitoken",
        "rotated",
        console(key("v1", 27), "apiToken"),
        "older still (apiToken)",
        key_field="apiToken",
    )
    add(
        "demo/due/extra-fields",
        "rotated",
        console(key("v1", 28), owner="team-payments", region_hint="us-east-1"),
        "extra fields must survive",
    )
    add(
        "demo/due/data-scoped",
        "rotated",
        console(key("v1", 25, scope="data")),
        "a data-only key: the control plane answers PERMISSION_DENIED, which still authenticates",
    )

    for i in range(4 * scale):
        add(f"demo/fresh/v1-{i:02d}", "unchanged", console(key("v1", 2)), "25+ days left")
    add(
        "demo/fresh/never-expires",
        "unchanged",
        {
            "apiKey": key("v1", 1, lifetime=0).stored_key,
            "refreshToken": "rt-unused",
            "validUntil": "0",
        },
        "validUntil 0: never expires",
    )

    add("demo/broken/not-json", "dead-lettered:malformed-secret", "{apiKey: oops", "not JSON")
    add(
        "demo/broken/no-key-field",
        "dead-lettered:malformed-secret",
        {"token": "x", "validUntil": "0"},
        "no apiKey field",
    )
    expired = key("v1", 31)
    add(
        "demo/broken/expired",
        "dead-lettered:key-expired",
        console(expired),
        "expired a day ago: only a person can help",
    )
    millis = key("v1", 25)
    add(
        "demo/broken/milliseconds",
        "dead-lettered:malformed-secret",
        {
            "apiKey": millis.stored_key,
            "refreshToken": millis.refresh_token,
            "validUntil": str(millis.valid_until * 1000),
        },
        "validUntil in milliseconds",
    )
    v2 = key("v2", 25)
    add(
        "demo/broken/v2-key",
        "dead-lettered:not-refreshable",
        {"apiKey": v2.stored_key, "validUntil": str(v2.valid_until)},
        "v2 keys must be regenerated, not refreshed",
    )
    no_token = key("v1", 25)
    add(
        "demo/broken/no-refresh-token",
        "dead-lettered:not-refreshable",
        {"apiKey": no_token.stored_key, "validUntil": str(no_token.valid_until)},
        "no refreshToken",
    )
    disposable = standin.mint_key(DAY, form="disposable", issued_at=now - 0.75 * DAY)
    add(
        "demo/broken/disposable",
        "dead-lettered:not-refreshable",
        {"apiKey": disposable.stored_key, "validUntil": str(disposable.valid_until)},
        "a disposable token",
    )

    add(
        "demo/bystander/untagged",
        "unchanged",
        console(key("v1", 25)),
        "due, but not opted in",
        tags={"team": "platform"},
    )
    add(
        "demo/bystander/prefix-tagged",
        "unchanged",
        console(key("v1", 25)),
        "tagged momento-token-old: a prefix match, not an opt-in",
        tags={f"{tag_key}-old": "yes"},
    )
    add(
        "demo/bystander/being-deleted",
        "unchanged",
        console(key("v1", 25)),
        "opted in but scheduled for deletion",
        scheduled_for_deletion=True,
    )
    return fleet


def seed(secrets_client: Any, fleet: list[FleetSecret]) -> None:
    for secret in fleet:
        tags = [{"Key": k, "Value": v} for k, v in secret.tags.items()]
        kwargs: dict[str, Any] = {"Name": secret.name, "Tags": tags}
        if secret.value is not None:
            kwargs["SecretString"] = secret.value
        secrets_client.create_secret(**kwargs)
        if secret.scheduled_for_deletion:
            secrets_client.delete_secret(SecretId=secret.name, RecoveryWindowInDays=7)


def snapshot(secrets_client: Any, name: str) -> Snapshot:
    described = secrets_client.describe_secret(SecretId=name)
    stages = {v: list(s) for v, s in (described.get("VersionIdsToStages") or {}).items()}
    current = next((v for v, s in stages.items() if "AWSCURRENT" in s), None)
    value = None
    if current is not None and described.get("DeletedDate") is None:
        value = secrets_client.get_secret_value(SecretId=name, VersionId=current).get(
            "SecretString"
        )
    tags = {t["Key"]: t["Value"] for t in described.get("Tags") or []}
    return Snapshot(current, value, stages, tags)


def check(
    fleet: list[FleetSecret],
    before: dict[str, Snapshot],
    after: dict[str, Snapshot],
    dead_letters: dict[str, str],
    accepted: Callable[[str], bool],
) -> list[str]:
    """Every way the loop broke its promises, as sentences naming the secret."""
    problems: list[str] = []
    for secret in fleet:
        old, new = before[secret.name], after[secret.name]
        if secret.expect == "rotated":
            problems += _check_rotated(secret, old, new, accepted)
        elif secret.expect == "unchanged":
            if (old.version_id, old.value) != (new.version_id, new.value):
                problems.append(f"{secret.name}: changed, but must not be touched")
        else:
            reason = secret.expect.split(":", 1)[1]
            if (old.version_id, old.value) != (new.version_id, new.value):
                problems.append(f"{secret.name}: changed, but a broken secret must stay as it was")
            if dead_letters.get(secret.name) != reason:
                got = dead_letters.get(secret.name, "nothing")
                problems.append(f"{secret.name}: expected a DLQ entry {reason}, found {got}")
        if any("AWSPENDING" in s for v, s in new.stages.items() if v != new.version_id):
            problems.append(f"{secret.name}: AWSPENDING left on a version that is not current")
    return problems


def _check_rotated(
    secret: FleetSecret, old: Snapshot, new: Snapshot, accepted: Callable[[str], bool]
) -> list[str]:
    if new.version_id == old.version_id or new.value is None or old.value is None:
        return [f"{secret.name}: was due but not rotated"]
    before, after = json.loads(old.value), json.loads(new.value)
    problems = []
    if secret.key_field not in after:
        problems.append(f"{secret.name}: the key moved out of {secret.key_field}")
    elif not accepted(after[secret.key_field]):
        problems.append(f"{secret.name}: the stored key is not one Momento accepts")
    if type(after.get("validUntil")) is not type(before.get("validUntil")):
        problems.append(f"{secret.name}: validUntil changed type")
    lost = set(before) - set(after)
    if lost:
        problems.append(f"{secret.name}: fields lost: {sorted(lost)}")
    return problems
