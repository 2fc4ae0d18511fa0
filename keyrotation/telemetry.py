"""Metric names, in one place: the stack's alarms and the handlers must agree on them.

Dimensions stay low-cardinality: a secret's name is never a dimension (it is in the logs).
"""

from __future__ import annotations

NAMESPACE = "MomentoKeyRotation"

SECRETS_SCANNED = "SecretsScanned"
SECRETS_DUE = "SecretsDue"
SECRETS_TO_INSPECT = "SecretsToInspect"
SECRETS_EXPIRED = "SecretsExpired"
SECRETS_NOT_REFRESHABLE = "SecretsNotRefreshable"
SECRETS_NOT_REFRESHABLE_NEAR_EXPIRY = "SecretsNotRefreshableNearExpiry"
SECRETS_FAILING = "SecretsFailing"
SECRETS_OVERDUE = "SecretsOverdue"
SCAN_SEND_FAILURES = "ScanSendFailures"

ROTATION_SUCCEEDED = "RotationSucceeded"
ROTATION_NOT_DUE = "RotationNotDue"
ROTATION_SUPERSEDED = "RotationSuperseded"
ROTATION_SKIPPED = "RotationSkipped"
ROTATION_FAILED_TRANSIENT = "RotationFailedTransient"
ROTATION_FAILED_PERMANENT = "RotationFailedPermanent"
ROTATION_DEADLINE_AT_RISK = "RotationDeadlineAtRisk"
ROTATION_DEAD_LETTERED = "RotationDeadLettered"
