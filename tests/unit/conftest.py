"""In-process stand-ins for the domain's moving parts: Secrets Manager, SQS, Momento and keys.

Nothing here opens a socket. The fakes follow AWS's documented behaviour where the product
depends on it (a reused ClientRequestToken with another value is refused; moving AWSCURRENT
is a compare-and-swap), and fail with botocore `ClientError`s carrying real error codes.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from keyrotation.key_format import KeyInfo, encode_v1_key
from keyrotation.momento_auth import RefreshedKey
from keyrotation.settings import DAY, Settings

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
SIGNING_KEY = "unit-tests-sign-jwts-with-this-32+-byte-hmac-key"
ENDPOINT = "cell-4-eu-west-1-1.prod.a.momentohq.com"
ARN_PREFIX = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:"
ROTATION_QUEUE = "https://sqs.eu-west-1.amazonaws.com/111122223333/rotation.fifo"
DEAD_LETTER_QUEUE = "https://sqs.eu-west-1.amazonaws.com/111122223333/rotation-dlq.fifo"
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
ORIGINAL_REFRESH_TOKEN = "rt-original-0f3c9a"


def client_error(code: str, operation: str, message: str = "") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return ClientError(response, operation)


# Keys ----------------------------------------------------------------------------------------


class KeyMaker:
    """Builds Momento keys of every format, and the secret documents that hold them."""

    now = NOW
    endpoint = ENDPOINT
    refresh_token = ORIGINAL_REFRESH_TOKEN

    def jwt(self, **claims: Any) -> str:
        return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")

    def legacy(self, valid_until: int, lifetime: int = 30 * DAY) -> str:
        return self.jwt(
            sub="legacy-user",
            cp=f"control.{self.endpoint}",
            c=f"cache.{self.endpoint}",
            iat=valid_until - lifetime,
            exp=valid_until,
        )

    def v1(self, valid_until: int, lifetime: int = 30 * DAY, endpoint: str | None = None) -> str:
        inner = self.jwt(sub="v1-user", iat=valid_until - lifetime, exp=valid_until)
        return encode_v1_key(endpoint or self.endpoint, inner)

    def v2(self, valid_until: int, lifetime: int = 30 * DAY) -> str:
        return self.jwt(t="g", sub="v2-user", iat=valid_until - lifetime, exp=valid_until)

    def secret(
        self,
        api_key: str,
        valid_until: int | str | None,
        refresh_token: str | None = ORIGINAL_REFRESH_TOKEN,
        key_field: str = "apiKey",
        **extra: Any,
    ) -> str:
        document: dict[str, Any] = {key_field: api_key, **extra}
        if refresh_token is not None:
            document["refreshToken"] = refresh_token
        if valid_until is not None:
            document["validUntil"] = valid_until
        return json.dumps(document)

    def due_v1_secret(self, days_left: float = 2, **extra: Any) -> str:
        """A refreshable v1 key of 30 days' life, `days_left` before its expiry."""
        valid_until = int(self.now + days_left * DAY)
        return self.secret(self.v1(valid_until), str(valid_until), **extra)


@pytest.fixture
def keys() -> KeyMaker:
    return KeyMaker()


@pytest.fixture
def now() -> int:
    return NOW


# Secrets Manager -----------------------------------------------------------------------------


@dataclass
class _StoredSecret:
    arn: str
    name: str
    tags: dict[str, str]
    strings: dict[str, str | None] = field(default_factory=dict)
    binaries: dict[str, bytes | None] = field(default_factory=dict)
    stages: dict[str, set[str]] = field(default_factory=dict)
    deleted: bool = False

    def holder(self, stage: str) -> str | None:
        return next((v for v, labels in self.stages.items() if stage in labels), None)

    def attach(self, stage: str, version_id: str) -> None:
        for labels in self.stages.values():
            labels.discard(stage)
        self.stages.setdefault(version_id, set()).add(stage)

    def labelled(self) -> dict[str, list[str]]:
        return {v: sorted(labels) for v, labels in self.stages.items() if labels}


class FakeSecretsManager:
    """The Secrets Manager calls the domain makes, in memory, with AWS's rules."""

    WRITE_METHODS = frozenset(
        {"put_secret_value", "update_secret_version_stage", "tag_resource", "untag_resource"}
    )

    def __init__(self) -> None:
        self._secrets: dict[str, _StoredSecret] = {}
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.page_size = 2  # smaller than MaxResults, as real pages may be

    # Arranging and inspecting, for the tests --------------------------------------------------

    def create(
        self,
        name: str,
        value: str | None = None,
        tags: dict[str, str] | None = None,
        binary: bytes | None = None,
    ) -> str:
        arn = f"{ARN_PREFIX}{name}-AbC123"
        tags = {"momento-token": "true"} if tags is None else tags
        secret = _StoredSecret(arn, name, dict(tags))
        if value is not None or binary is not None:
            version_id = str(uuid.uuid5(uuid.NAMESPACE_URL, arn))
            secret.strings[version_id] = value
            secret.binaries[version_id] = binary
            secret.stages[version_id] = {CURRENT}
        self._secrets[arn] = secret
        return arn

    def fail(self, method: str, *codes: str) -> None:
        """Make the next calls of `method` fail with these error codes, in order."""
        self._faults[method].extend(codes)

    def schedule_deletion(self, secret_id: str) -> None:
        self._find(secret_id).deleted = True

    def version_with(self, secret_id: str, stage: str) -> str | None:
        return self._find(secret_id).holder(stage)

    def value_of(self, secret_id: str, stage: str = CURRENT) -> str | None:
        secret = self._find(secret_id)
        holder = secret.holder(stage)
        return None if holder is None else secret.strings[holder]

    def labels(self, secret_id: str) -> dict[str, list[str]]:
        return self._find(secret_id).labelled()

    def tags_of(self, secret_id: str) -> dict[str, str]:
        return dict(self._find(secret_id).tags)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    @property
    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, kwargs) for name, kwargs in self.calls if name in self.WRITE_METHODS]

    # The API ---------------------------------------------------------------------------------

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        self._enter("describe_secret", SecretId=SecretId)
        secret = self._find(SecretId)
        response: dict[str, Any] = {
            "ARN": secret.arn,
            "Name": secret.name,
            "Tags": [{"Key": k, "Value": v} for k, v in secret.tags.items()],
            "VersionIdsToStages": secret.labelled(),
        }
        if secret.deleted:
            response["DeletedDate"] = datetime.fromtimestamp(NOW, UTC)
        return response

    def get_secret_value(
        self,
        SecretId: str,
        VersionId: str | None = None,
        VersionStage: str | None = None,
    ) -> dict[str, Any]:
        self._enter("get_secret_value", SecretId=SecretId, VersionId=VersionId)
        secret = self._live(SecretId, "GetSecretValue")
        version_id = VersionId or secret.holder(VersionStage or CURRENT)
        if version_id not in secret.strings:
            raise client_error(
                "ResourceNotFoundException",
                "GetSecretValue",
                "Secrets Manager can't find the specified secret value for VersionId",
            )
        response: dict[str, Any] = {
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": version_id,
            "VersionStages": sorted(secret.stages.get(version_id, set())),
        }
        if secret.strings[version_id] is not None:
            response["SecretString"] = secret.strings[version_id]
        if secret.binaries[version_id] is not None:
            response["SecretBinary"] = secret.binaries[version_id]
        return response

    def put_secret_value(
        self,
        SecretId: str,
        ClientRequestToken: str,
        SecretString: str,
        VersionStages: list[str] | None = None,
    ) -> dict[str, Any]:
        self._enter(
            "put_secret_value",
            SecretId=SecretId,
            ClientRequestToken=ClientRequestToken,
            SecretString=SecretString,
            VersionStages=VersionStages,
        )
        secret = self._live(SecretId, "PutSecretValue")
        stages = VersionStages or [CURRENT]
        if ClientRequestToken in secret.strings:
            if secret.strings[ClientRequestToken] != SecretString:
                raise client_error(
                    "ResourceExistsException",
                    "PutSecretValue",
                    "You can't modify an existing version, you can only create a new version.",
                )
        else:
            secret.strings[ClientRequestToken] = SecretString
            secret.binaries[ClientRequestToken] = None
            for stage in stages:
                previous = secret.holder(stage)
                secret.attach(stage, ClientRequestToken)
                if stage == CURRENT and previous is not None:
                    secret.attach(PREVIOUS, previous)
        return {
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": ClientRequestToken,
            "VersionStages": sorted(secret.stages[ClientRequestToken]),
        }

    def update_secret_version_stage(
        self,
        SecretId: str,
        VersionStage: str,
        MoveToVersionId: str | None = None,
        RemoveFromVersionId: str | None = None,
    ) -> dict[str, Any]:
        self._enter(
            "update_secret_version_stage",
            SecretId=SecretId,
            VersionStage=VersionStage,
            MoveToVersionId=MoveToVersionId,
            RemoveFromVersionId=RemoveFromVersionId,
        )
        secret = self._live(SecretId, "UpdateSecretVersionStage")
        holder = secret.holder(VersionStage)
        if RemoveFromVersionId is not None and holder != RemoveFromVersionId:
            raise client_error(
                "InvalidParameterException",
                "UpdateSecretVersionStage",
                f"The staging label {VersionStage} is not attached to the version "
                "you asked to remove it from.",
            )
        if MoveToVersionId is None:
            if VersionStage == CURRENT:
                raise client_error(
                    "InvalidParameterException",
                    "UpdateSecretVersionStage",
                    "You can't remove AWSCURRENT without moving it to another version.",
                )
            if holder is not None:
                secret.stages[holder].discard(VersionStage)
        else:
            if MoveToVersionId not in secret.strings:
                raise client_error("ResourceNotFoundException", "UpdateSecretVersionStage")
            if holder not in (None, MoveToVersionId) and RemoveFromVersionId is None:
                raise client_error(
                    "InvalidParameterException",
                    "UpdateSecretVersionStage",
                    "The label is attached to another version: name it in RemoveFromVersionId.",
                )
            secret.attach(VersionStage, MoveToVersionId)
            if VersionStage == CURRENT and holder not in (None, MoveToVersionId):
                secret.attach(PREVIOUS, holder)
        return {"ARN": secret.arn, "Name": secret.name}

    def tag_resource(self, SecretId: str, Tags: list[dict[str, str]]) -> None:
        self._enter("tag_resource", SecretId=SecretId, Tags=Tags)
        secret = self._find(SecretId)
        secret.tags.update({tag["Key"]: tag["Value"] for tag in Tags})

    def untag_resource(self, SecretId: str, TagKeys: list[str]) -> None:
        self._enter("untag_resource", SecretId=SecretId, TagKeys=TagKeys)
        secret = self._find(SecretId)
        for key in TagKeys:
            secret.tags.pop(key, None)

    def get_paginator(self, operation: str) -> _ListSecretsPaginator:
        assert operation == "list_secrets"
        return _ListSecretsPaginator(self)

    # Internals -------------------------------------------------------------------------------

    def _enter(self, method: str, **kwargs: Any) -> None:
        self.calls.append((method, copy.deepcopy(kwargs)))
        if self._faults[method]:
            code = self._faults[method].popleft()
            raise client_error(code, _operation(method), f"injected {code}")

    def _find(self, secret_id: str) -> _StoredSecret:
        for secret in self._secrets.values():
            if secret_id in (secret.arn, secret.name):
                return secret
        raise client_error(
            "ResourceNotFoundException", "DescribeSecret", "Secrets Manager can't find it."
        )

    def _live(self, secret_id: str, operation: str) -> _StoredSecret:
        secret = self._find(secret_id)
        if secret.deleted:
            raise client_error(
                "InvalidRequestException",
                operation,
                "You can't perform this operation on the secret because it was marked for "
                "deletion.",
            )
        return secret

    def _listing(self, filters: list[dict[str, Any]], include_deleted: bool) -> list[dict]:
        def matches(secret: _StoredSecret) -> bool:
            for rule in filters:
                assert rule["Key"] == "tag-key"
                # ListSecrets filters are case-sensitive prefix matches.
                if not any(k.startswith(v) for v in rule["Values"] for k in secret.tags):
                    return False
            return include_deleted or not secret.deleted

        entries = []
        for secret in self._secrets.values():
            if matches(secret):
                entry: dict[str, Any] = {
                    "ARN": secret.arn,
                    "Name": secret.name,
                    "Tags": [{"Key": k, "Value": v} for k, v in secret.tags.items()],
                    "SecretVersionsToStages": secret.labelled(),
                }
                if secret.deleted:
                    entry["DeletedDate"] = datetime.fromtimestamp(NOW, UTC)
                entries.append(entry)
        return entries


class _ListSecretsPaginator:
    def __init__(self, fake: FakeSecretsManager) -> None:
        self._fake = fake

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self._fake._enter("list_secrets", **kwargs)
        entries = self._fake._listing(
            kwargs.get("Filters", []), kwargs.get("IncludePlannedDeletion", False)
        )
        size = self._fake.page_size
        for start in range(0, max(len(entries), 1), size):
            yield {"SecretList": entries[start : start + size]}


def _operation(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


@pytest.fixture
def sm() -> FakeSecretsManager:
    return FakeSecretsManager()


# SQS -----------------------------------------------------------------------------------------


class FakeSqs:
    """Records what is sent; `refuse` and `fail` script the answers."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.visibility: list[tuple[str, str, int]] = []
        self._refusals: deque[set[str]] = deque()
        self._faults: dict[str, deque[str]] = defaultdict(deque)

    def refuse(self, *rounds: Callable[[list[dict[str, Any]]], set[str]]) -> None:
        """Each round picks, from a batch's entries, the ids SQS refuses in that call."""
        self._refusals.extend(rounds)

    def fail(self, method: str, code: str) -> None:
        self._faults[method].append(code)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        self._raise_if_failing("send_message_batch")
        self.batches.append(copy.deepcopy(Entries))
        refused = self._refusals.popleft()(Entries) if self._refusals else set()
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in refused],
            "Failed": [
                {"Id": entry_id, "Code": "ThrottlingException", "SenderFault": False}
                for entry_id in sorted(refused)
            ],
        }

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self._raise_if_failing("send_message")
        self.sent.append(copy.deepcopy(kwargs))
        return {"MessageId": f"dlq-{len(self.sent)}"}

    def change_message_visibility(
        self,
        QueueUrl: str,
        ReceiptHandle: str,
        VisibilityTimeout: int,
    ) -> None:
        self._raise_if_failing("change_message_visibility")
        self.visibility.append((QueueUrl, ReceiptHandle, VisibilityTimeout))

    def _raise_if_failing(self, method: str) -> None:
        if self._faults[method]:
            raise client_error(self._faults[method].popleft(), _operation(method))


@pytest.fixture
def sqs() -> FakeSqs:
    return FakeSqs()


# Momento -------------------------------------------------------------------------------------


class FakeMomento:
    """Refreshes keys like Momento does: a new v1 key of the same lifetime, counted from now."""

    def __init__(self, keys: KeyMaker, lifetime: int = 30 * DAY) -> None:
        self._keys = keys
        self.lifetime = lifetime
        self.refreshes: list[tuple[str, str, str]] = []
        self.verified: list[str] = []
        self.refresh_error: Exception | None = None
        self.verify_error: Exception | None = None
        self.before_answer: Callable[[], None] | None = None

    def refresh(self, secret_id: str, key: KeyInfo, refresh_token: str) -> RefreshedKey:
        self.refreshes.append((secret_id, key.inner_jwt, refresh_token))
        if self.before_answer is not None:
            self.before_answer()
        if self.refresh_error is not None:
            raise self.refresh_error
        number = len(self.refreshes)
        valid_until = self._keys.now + self.lifetime
        inner = self._keys.jwt(sub=f"refreshed-{number}", iat=self._keys.now, exp=valid_until)
        return RefreshedKey(
            stored_key=encode_v1_key(self._keys.endpoint, inner),
            refresh_token=f"rt-refreshed-{number}",
            endpoint=self._keys.endpoint,
            valid_until=valid_until,
        )

    def verify(self, secret_id: str, key: KeyInfo) -> None:
        self.verified.append(key.inner_jwt)
        if self.verify_error is not None:
            raise self.verify_error


@pytest.fixture
def momento(keys: KeyMaker) -> FakeMomento:
    return FakeMomento(keys)


# Settings and metrics ------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return Settings(rotation_queue_url=ROTATION_QUEUE, dead_letter_queue_url=DEAD_LETTER_QUEUE)


class MetricLog(list[str]):
    """A metric sink that remembers every metric name it was given, once per unit."""

    def __call__(self, name: str, value: int = 1) -> None:
        self.extend([name] * value)


@pytest.fixture
def metrics() -> MetricLog:
    return MetricLog()
