"""Where the commands act: the AWS session, the settings, and the deployed stack's queues.

Precedence follows `keyrotation.settings`: a command-line option beats the environment
(`TAG_KEY`, `ROTATION_QUEUE_URL`, `DEAD_LETTER_QUEUE_URL`, `MOMENTO_ENDPOINT_OVERRIDE`), which
beats the default. A queue URL given neither way is read from the CloudFormation stack's
outputs, matched by substring of the output key so that CDK's generated suffixes do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from keyrotation import aws
from keyrotation.settings import Settings
from momento_keys.errors import CommandFailed, describe_aws_error

DEFAULT_STACK_NAME = "MomentoKeyRotation"
ROTATION_QUEUE_OUTPUT = "RotationQueueUrl"
DEAD_LETTER_QUEUE_OUTPUT = "DeadLetterQueueUrl"

# One attempt only: used to probe for an API the endpoint may not implement.
SINGLE_ATTEMPT = aws.CLIENT_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 1}))


@dataclass
class Deployment:
    """The session, the settings and the stack one invocation of the command line works on."""

    session: boto3.session.Session
    settings: Settings
    endpoint_url: str | None = None
    stack_name: str = DEFAULT_STACK_NAME
    _clients: dict[tuple[str, bool], Any] = field(default_factory=dict, repr=False)
    _outputs: dict[str, str] | None = field(default=None, repr=False)

    def client(self, service: str, *, retries: bool = True) -> Any:
        """A boto3 client, made once per service; `retries=False` for probing calls."""
        cache_key = (service, retries)
        if cache_key not in self._clients:
            extra: dict[str, Any] = {}
            if self.endpoint_url:
                extra["endpoint_url"] = self.endpoint_url
            if retries:
                made = aws.client(service, self.session, **extra)
            else:
                made = self.session.client(service, config=SINGLE_ATTEMPT, **extra)
            self._clients[cache_key] = made
        return self._clients[cache_key]

    def rotation_queue_url(self) -> str:
        return self.settings.rotation_queue_url or self._from_stack(
            ROTATION_QUEUE_OUTPUT, "--queue-url (or ROTATION_QUEUE_URL)"
        )

    def dead_letter_queue_url(self) -> str:
        return self.settings.dead_letter_queue_url or self._from_stack(
            DEAD_LETTER_QUEUE_OUTPUT, "--dlq-url (or DEAD_LETTER_QUEUE_URL)"
        )

    def _from_stack(self, output_part: str, option: str) -> str:
        outputs = self._stack_outputs(option)
        matches = sorted({value for key, value in outputs.items() if output_part in key})
        if not matches:
            raise CommandFailed(
                f"stack {self.stack_name} has no output whose key contains {output_part}: "
                f"pass {option}"
            )
        if len(matches) > 1:
            raise CommandFailed(
                f"stack {self.stack_name} has several outputs matching {output_part}: pass {option}"
            )
        return matches[0]

    def _stack_outputs(self, option: str) -> dict[str, str]:
        if self._outputs is None:
            cloudformation = self.client("cloudformation")
            try:
                stacks = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
            except (ClientError, BotoCoreError) as error:
                raise CommandFailed(
                    f"no queue URL given and stack {self.stack_name} could not be read "
                    f"({describe_aws_error(error)}): pass {option}, or --stack-name"
                ) from None
            raw = (stacks[0].get("Outputs") or []) if stacks else []
            self._outputs = {
                str(item.get("OutputKey", "")): str(item.get("OutputValue", "")) for item in raw
            }
        return self._outputs


def connect(
    *,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    stack_name: str,
    settings: Settings,
) -> Deployment:
    """Open the session. Raises botocore's `ProfileNotFound` for an unknown profile."""
    session = boto3.session.Session(profile_name=profile, region_name=region)
    return Deployment(session, settings, endpoint_url or None, stack_name)
