"""`rotate`: refresh one secret now, through the rotator's own code path.

The request carries the reason `manual`, which rotates even a key that is not yet due. A rotation
already queued for the same secret is no hazard: both derive the same version id from the
version they start from, so the second one finds the work done (see `keyrotation.rotation`).
"""

from __future__ import annotations

import time

from keyrotation.messages import RotationRequest
from keyrotation.momento_auth import MomentoAuth
from keyrotation.rotation import Outcome, RotationResult, Rotator
from momento_keys import output
from momento_keys.deployment import Deployment
from momento_keys.errors import EXIT_OK, CommandFailed


def run(deployment: Deployment, name: str) -> int:
    """Raises `RotationError` (the caller prints it) or `CommandFailed` when nothing happened."""
    settings = deployment.settings
    momento = MomentoAuth(settings.momento_endpoint_override, settings.momento_timeout_seconds)
    rotator = Rotator(deployment.client("secretsmanager"), momento, settings)
    try:
        result = rotator.rotate(RotationRequest(name, "manual"))
    finally:
        momento.close()

    if result.outcome is Outcome.SKIPPED:
        raise CommandFailed(f"{name}: not rotated: {result.detail}")
    output.summary(_outcome_line(name, result))
    return EXIT_OK


def _outcome_line(name: str, result: RotationResult) -> str:
    if result.outcome in (Outcome.ROTATED, Outcome.RESUMED):
        verb = "rotated" if result.outcome is Outcome.ROTATED else "finished an earlier rotation of"
        return f"{verb} {name}: {result.detail} (version {result.version_id}, {_expiry(result)})"
    if result.outcome is Outcome.SUPERSEDED:
        return f"{name}: {result.detail}; nothing left to do"
    return f"{name}: {result.outcome.value}: {result.detail}"


def _expiry(result: RotationResult) -> str:
    if not result.valid_until:
        return "never expires"
    left = output.time_left(result.valid_until, int(result.valid_until - time.time()))
    return f"valid until {output.utc(result.valid_until)}, {left} left"
