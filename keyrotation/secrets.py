"""Secrets Manager adapter: the only module that calls the Secrets Manager API.

Every function takes the boto3 client as its first argument. AWS errors are translated here:
throttling and service faults become `AwsUnavailable` (retryable); a secret that is gone or
scheduled for deletion becomes `SecretGone`; error codes are matched, never HTTP statuses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrotation.errors import AwsUnavailable, PermanentError, RotationError

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
LIST_PAGE_SIZE = 100

# A fixed namespace makes the ClientRequestToken of a rotation a pure function of the secret
# and the version it starts from: every retry and every concurrent sibling computes the same one.
_TOKEN_NAMESPACE = uuid.UUID("6f1c2b8e-5d1a-4e61-9a57-2f0b6c1d9e34")

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class SecretGone(RotationError):
    """Raised when the secret no longer exists or is scheduled for deletion."""

    reason = "secret-gone"


class VersionConflict(RotationError):
    """Raised when a version id is already taken by a different value (a sibling wrote it)."""

    reason = "version-conflict"


@dataclass(frozen=True)
class SecretState:
    """What `ListSecrets` or `DescribeSecret` says about a secret, without its value."""

    arn: str
    name: str
    tags: Mapping[str, str]
    versions_to_stages: Mapping[str, tuple[str, ...]]
    scheduled_for_deletion: bool = False
    kms_key_id: str | None = None
    last_changed: Any = None

    @property
    def current_version_id(self) -> str | None:
        return self._version_with(CURRENT)

    @property
    def pending_version_id(self) -> str | None:
        return self._version_with(PENDING)

    def has_tag(self, key: str) -> bool:
        return key in self.tags

    def _version_with(self, stage: str) -> str | None:
        return next((v for v, stages in self.versions_to_stages.items() if stage in stages), None)


# A version id can be left taken without being any rotation's work in progress: a key that
# failed verification stays in an unlabelled version, and an operator may roll AWSCURRENT back
# to a version this tool already rotated away from. The rotation then moves on to the next id.
TOKENS_PER_VERSION = 4


def rotation_token(arn: str, from_version_id: str, attempt: int = 0) -> str:
    """The ClientRequestToken (and so the version id) of the rotation away from a version."""
    material = f"{arn}\n{from_version_id}" + (f"\n{attempt}" if attempt else "")
    return str(uuid.uuid5(_TOKEN_NAMESPACE, material))


def rotation_tokens(arn: str, from_version_id: str) -> list[str]:
    """Every version id a rotation away from `from_version_id` may use, in order."""
    return [rotation_token(arn, from_version_id, n) for n in range(TOKENS_PER_VERSION)]


def list_opted_in_secrets(client: Any, tag_key: str) -> Iterator[SecretState]:
    """Every secret carrying exactly `tag_key`, across all pages, planned deletions left out.

    The `tag-key` filter is a prefix match, so the exact key is checked again here. Replicas of
    secrets whose primary is in another region are left out: they are read-only here, and the
    stack in the primary's region rotates them.
    """
    region = getattr(getattr(client, "meta", None), "region_name", None)
    paginator = client.get_paginator("list_secrets")
    pages = paginator.paginate(
        Filters=[{"Key": "tag-key", "Values": [tag_key]}],
        IncludePlannedDeletion=False,
        PaginationConfig={"PageSize": LIST_PAGE_SIZE},
    )
    try:
        for page in pages:
            for entry in page.get("SecretList", []):
                state = _state(entry, "SecretVersionsToStages")
                primary = entry.get("PrimaryRegion")
                if primary and region and primary != region:
                    continue
                if state.has_tag(tag_key) and not state.scheduled_for_deletion:
                    yield state
    except ClientError as error:
        raise _translate("ListSecrets", tag_key, error) from None
    except BotoCoreError as error:
        raise AwsUnavailable(tag_key, f"ListSecrets failed: {type(error).__name__}") from None


def describe(client: Any, secret_id: str) -> SecretState:
    """The fresh state of one secret; raises `SecretGone` when it is gone or being deleted."""
    response = _call(client, "describe_secret", secret_id, SecretId=secret_id)
    state = _state(response, "VersionIdsToStages")
    if state.scheduled_for_deletion:
        raise SecretGone(state.name, "the secret is scheduled for deletion")
    return state


def get_value(client: Any, arn: str, version_id: str) -> str | None:
    """The SecretString of one version, read by id (a read by stage can lag a fresh write)."""
    response = _call(client, "get_secret_value", arn, SecretId=arn, VersionId=version_id)
    value = response.get("SecretString")
    return value if isinstance(value, str) else None


def put_pending(client: Any, arn: str, token: str, secret_string: str) -> str:
    """Store a value as AWSPENDING under `token`; safe to retry with the same value.

    Raises `VersionConflict` when `token` already names a different value (ResourceExists).
    """
    try:
        response = client.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=secret_string,
            VersionStages=[PENDING],
        )
    except ClientError as error:
        if _code(error) == "ResourceExistsException":
            raise VersionConflict(
                arn, "the rotation's version already holds another value"
            ) from None
        raise _translate("PutSecretValue", arn, error) from None
    except BotoCoreError as error:
        raise AwsUnavailable(arn, f"PutSecretValue failed: {type(error).__name__}") from None
    return str(response["VersionId"])


def promote(client: Any, arn: str, new_version_id: str, old_version_id: str) -> None:
    """Move AWSCURRENT to the new version; fails if `old_version_id` no longer holds it."""
    _call(
        client,
        "update_secret_version_stage",
        arn,
        SecretId=arn,
        VersionStage=CURRENT,
        MoveToVersionId=new_version_id,
        RemoveFromVersionId=old_version_id,
    )


def remove_pending(client: Any, arn: str, version_id: str) -> None:
    """Take AWSPENDING off a version, so native rotation never sees an unfinished rotation.

    Idempotent: Secrets Manager refuses to remove a label the version no longer holds, which
    is what a concurrent rotation that got there first leaves, so that refusal counts as done.
    """
    try:
        _call(
            client,
            "update_secret_version_stage",
            arn,
            SecretId=arn,
            VersionStage=PENDING,
            RemoveFromVersionId=version_id,
        )
    except AwsCallFailed:
        if PENDING in describe(client, arn).versions_to_stages.get(version_id, ()):
            raise


def tag(client: Any, arn: str, tags: Mapping[str, str]) -> None:
    pairs = [{"Key": key, "Value": value} for key, value in tags.items()]
    _call(client, "tag_resource", arn, SecretId=arn, Tags=pairs)


def untag(client: Any, arn: str, keys: list[str]) -> None:
    _call(client, "untag_resource", arn, SecretId=arn, TagKeys=keys)


def _call(client: Any, method: str, secret_id: str, **kwargs: Any) -> Any:
    try:
        return getattr(client, method)(**kwargs)
    except ClientError as error:
        raise _translate(_operation(method), secret_id, error) from None
    except BotoCoreError as error:
        raise AwsUnavailable(
            secret_id, f"{_operation(method)} failed: {type(error).__name__}"
        ) from None


def _translate(operation: str, secret_id: str, error: ClientError) -> RotationError:
    code = _code(error)
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code == "ResourceNotFoundException":
        return SecretGone(secret_id, "the secret does not exist")
    if code == "InvalidRequestException" and "deletion" in message.lower():
        return SecretGone(secret_id, "the secret is scheduled for deletion")
    if code in TRANSIENT_CODES:
        return AwsUnavailable(secret_id, f"{operation} was throttled or failed ({code})")
    return AwsCallFailed(secret_id, f"{operation} failed ({code})", code)


class AwsCallFailed(PermanentError):
    """Raised when Secrets Manager refused a call for a reason retrying will not change."""

    reason = "aws-call-failed"

    def __init__(self, secret_id: str, detail: str, code: str) -> None:
        super().__init__(secret_id, detail)
        self.code = code


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _operation(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def _state(entry: Mapping[str, Any], stages_field: str) -> SecretState:
    raw_stages = entry.get(stages_field) or {}
    stages = {version: tuple(labels) for version, labels in raw_stages.items() if labels}
    return SecretState(
        arn=str(entry["ARN"]),
        name=str(entry.get("Name", entry["ARN"])),
        tags={tag["Key"]: tag.get("Value", "") for tag in entry.get("Tags") or []},
        versions_to_stages=stages,
        scheduled_for_deletion=entry.get("DeletedDate") is not None,
        kms_key_id=entry.get("KmsKeyId"),
        last_changed=entry.get("LastChangedDate"),
    )
