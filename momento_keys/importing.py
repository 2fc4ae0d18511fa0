"""`import`: store a downloaded `momento_token.info.json` as an opted-in secret.

Everything is checked before anything is written: an unreadable file, JSON that is not a
Momento key, a `validUntil` in milliseconds or a key that has already expired is refused and
Secrets Manager is not called at all. The file's text is stored exactly as it is, because
applications read the secret directly and its field names and value types are theirs.

After the write, the expiry record for the new version is tagged on the secret, so the next scan
knows the expiry without waiting for the rotator to inspect the value.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrotation import secrets, state_tags
from keyrotation.errors import MalformedSecret, RotationError
from keyrotation.key_format import REFRESHABLE_FORMATS, KeyInfo, inspect_key
from keyrotation.secret_value import TokenSecret, parse_secret
from keyrotation.secrets import SecretGone
from momento_keys import output
from momento_keys.deployment import Deployment
from momento_keys.errors import EXIT_OK, CommandFailed, aws_failure

OPT_IN_VALUE = "true"

# The version id of an import is a pure function of the secret name and the file's text, so a
# retried import of the same file never stores a second copy.
_IMPORT_NAMESPACE = uuid.UUID("0d6f3a52-8c1e-4b7a-9e25-71c4b0f5a8d3")


@dataclass(frozen=True)
class TokenFile:
    """A validated token file. Its `text` holds the key: it is written, never shown."""

    path: Path
    text: str
    secret: TokenSecret
    key: KeyInfo

    def __repr__(self) -> str:  # never show the key
        return f"TokenFile(path={str(self.path)!r}, format={self.key.format})"

    @property
    def refreshable(self) -> bool:
        return self.key.format in REFRESHABLE_FORMATS and self.secret.refresh_token is not None

    def expiry_record(self, version_id: str) -> state_tags.ExpiryRecord:
        return state_tags.ExpiryRecord(
            version_id, self.secret.valid_until, self.key.lifetime_seconds, self.key.format
        )


def read_token_file(path: Path, now: float) -> TokenFile:
    """Read and check the file; raises `CommandFailed` naming the file and the problem."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandFailed(f"{label}: no such file") from None
    except UnicodeDecodeError:
        raise CommandFailed(
            f"{label}: not a text file (expected momento_token.info.json)"
        ) from None
    except OSError as error:
        raise CommandFailed(f"{label}: cannot read it: {error.strerror or error}") from None

    try:
        secret = parse_secret(label, text)
        key = inspect_key(label, secret.api_key, secret.refresh_token)
    except MalformedSecret as error:
        raise CommandFailed(str(error)) from None

    expires = secret.valid_until or key.expires_at or 0
    if expires and expires <= now:
        raise CommandFailed(
            f"{label}: the key expired at {output.utc(expires)} and can no longer be refreshed; "
            "download a new key from the Momento console"
        )
    return TokenFile(path, text, secret, key)


def run(
    deployment: Deployment,
    path: Path,
    name: str,
    description: str | None,
    kms_key_id: str | None,
) -> int:
    token_file = read_token_file(path, time.time())
    for warning in _warnings(token_file):
        output.warn(warning)

    client = deployment.client("secretsmanager")
    tag_key = deployment.settings.tag_key
    token = str(uuid.uuid5(_IMPORT_NAMESPACE, f"{name}\n{_digest(token_file.text)}"))
    try:
        existing = _existing(client, name)
        if existing is None:
            arn, version_id = _create(
                client, name, token_file, token, tag_key, description, kms_key_id
            )
            action = "created the secret"
            tags: dict[str, str] = {}
        else:
            arn = existing.arn
            version_id = _add_version(client, arn, token_file, token, description, kms_key_id)
            action = "stored a new version"
            tags = {} if existing.has_tag(tag_key) else {tag_key: OPT_IN_VALUE}
        fresh = secrets.describe(client, arn)
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(name, error) from None

    if fresh.current_version_id != version_id:
        output.summary(
            f"{name}: unchanged: this file was stored before as version {version_id}, and "
            f"AWSCURRENT is now version {fresh.current_version_id} (a newer key)"
        )
        return EXIT_OK

    tags[state_tags.EXPIRY_TAG] = token_file.expiry_record(version_id).to_tag()
    try:
        secrets.tag(client, arn, tags)
    except RotationError as error:
        unopted = f" and it is NOT opted in (no {tag_key} tag)" if tag_key in tags else ""
        raise CommandFailed(
            f"{name}: stored version {version_id}, but tagging failed ({error.detail}){unopted}; "
            "run the import again"
        ) from None

    added = f", added the tag {tag_key}" if tag_key in tags else ""
    output.summary(
        f"imported {path} into {name}: {action} (version {version_id}){added}; "
        f"{_expiry_phrase(token_file)}"
    )
    return EXIT_OK


def _existing(client: Any, name: str) -> secrets.SecretState | None:
    try:
        return secrets.describe(client, name)
    except SecretGone as gone:
        if "deletion" in gone.detail:
            raise CommandFailed(
                f"{name}: the secret is scheduled for deletion; restore it first "
                "(aws secretsmanager restore-secret) or choose another --name"
            ) from None
        return None


def _create(
    client: Any,
    name: str,
    token_file: TokenFile,
    token: str,
    tag_key: str,
    description: str | None,
    kms_key_id: str | None,
) -> tuple[str, str]:
    request: dict[str, Any] = {
        "Name": name,
        "SecretString": token_file.text,
        "ClientRequestToken": token,
        "Tags": [{"Key": tag_key, "Value": OPT_IN_VALUE}],
    }
    if description is not None:
        request["Description"] = description
    if kms_key_id is not None:
        request["KmsKeyId"] = kms_key_id
    response = client.create_secret(**request)
    return str(response["ARN"]), str(response["VersionId"])


def _add_version(
    client: Any,
    arn: str,
    token_file: TokenFile,
    token: str,
    description: str | None,
    kms_key_id: str | None,
) -> str:
    """PutSecretValue, or UpdateSecret when the description or KMS key changes as well.

    Both make the new version AWSCURRENT; the KMS key applies to this and later versions.
    """
    if description is None and kms_key_id is None:
        response = client.put_secret_value(
            SecretId=arn, SecretString=token_file.text, ClientRequestToken=token
        )
        return str(response["VersionId"])
    request: dict[str, Any] = {
        "SecretId": arn,
        "SecretString": token_file.text,
        "ClientRequestToken": token,
    }
    if description is not None:
        request["Description"] = description
    if kms_key_id is not None:
        request["KmsKeyId"] = kms_key_id
    return str(client.update_secret(**request)["VersionId"])


def _warnings(token_file: TokenFile) -> list[str]:
    label, key_format = str(token_file.path), token_file.key.format
    if token_file.secret.valid_until == 0:
        return []  # a key that never expires needs no refresh
    if key_format not in REFRESHABLE_FORMATS:
        return [
            f"{label}: a {key_format} key has no refresh protocol: it will not be refreshed "
            f"automatically; replace it by hand before {output.utc(token_file.secret.valid_until)}"
        ]
    if token_file.secret.refresh_token is None:
        return [
            f"{label}: the file has no refreshToken: the key will not be refreshed "
            "automatically; download it again with its refresh token"
        ]
    return []


def _expiry_phrase(token_file: TokenFile) -> str:
    valid_until = token_file.secret.valid_until
    described = f"a {token_file.key.format} key"
    if valid_until == 0:
        return f"{described} that never expires"
    left = output.time_left(valid_until, int(valid_until - time.time()))
    return f"{described} valid until {output.utc(valid_until)} ({left} left)"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
