"""The failures a rotation can meet, as a small hierarchy.

    RotationError
    ├── TransientError          retry later: SQS redelivers the message
    │   ├── MomentoUnavailable  Momento did not answer, timed out or throttled
    │   ├── AwsUnavailable      Secrets Manager or SQS throttled or failed
    │   └── NotEnoughTime       the invocation has too little time left to finish safely
    └── PermanentError          retrying cannot help: dead-letter with the reason
        ├── MalformedSecret     the stored value cannot be read as a Momento key
        ├── NotRefreshable      the key has no refresh protocol (v2 key, disposable, no token)
        ├── KeyExpired          the key's validUntil has passed; only a person can mint a new one
        ├── RefreshRejected     Momento refused the refresh (bad key, used token, ...)
        ├── VerificationFailed  Momento did not accept the freshly refreshed key
        └── VersionIdsTaken     every version id of the rotation is held by a leftover version

Messages name the secret and the problem, never a key, refresh token or secret value. Every
class carries a short machine-readable `reason` used in logs, metrics and dead-letter messages.
"""

from __future__ import annotations


class RotationError(Exception):
    """Base class: a rotation of `secret_id` could not finish."""

    reason = "rotation-error"
    retryable = False

    def __init__(self, secret_id: str, detail: str) -> None:
        super().__init__(f"{secret_id}: {detail}")
        self.secret_id = secret_id
        self.detail = detail
        # Filled in by the rotator on the way out: the version the rotation started from, and
        # the seconds its key had left (None: never expires, or not known).
        self.version_id: str | None = None
        self.seconds_left: int | None = None


class TransientError(RotationError):
    """Raised when a dependency failed in a way that a later attempt may not."""

    reason = "transient"
    retryable = True


class MomentoUnavailable(TransientError):
    """Raised when Momento's auth or control service is unreachable, slow or throttling."""

    reason = "momento-unavailable"


class AwsUnavailable(TransientError):
    """Raised when Secrets Manager or SQS throttled or failed a call."""

    reason = "aws-unavailable"


class NotEnoughTime(TransientError):
    """Raised before a refresh when the invocation could not finish storing its result."""

    reason = "not-enough-time"


class PermanentError(RotationError):
    """Raised when retrying the same input cannot succeed; a person has to act."""

    reason = "permanent"


class MalformedSecret(PermanentError):
    """Raised when the secret value is not JSON, lacks a key, or has an unusable validUntil."""

    reason = "malformed-secret"


class NotRefreshable(PermanentError):
    """Raised when the key cannot be refreshed: a v2 key, a disposable token, no refresh token."""

    reason = "not-refreshable"


class KeyExpired(PermanentError):
    """Raised when the key's validUntil has already passed: Momento refuses to refresh it."""

    reason = "key-expired"


class RefreshRejected(PermanentError):
    """Raised when Momento refused the refresh request itself."""

    reason = "refresh-rejected"


class VerificationFailed(PermanentError):
    """Raised when Momento refused to authenticate the newly stored key."""

    reason = "verification-failed"


class VersionIdsTaken(PermanentError):
    """Raised when leftover versions hold every version id a rotation may store its key under."""

    reason = "version-ids-taken"
