"""The IAM statements of the two functions, each scoped as tightly as the service allows.

The scanner only lists secrets and enqueues work: it can never read a secret value. The rotator
may touch a secret only while the secret carries the opt-in tag, and may write only the tags that
hold its own state, so it can neither opt a secret in nor remove the opt-in.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct

from infrastructure.config import STATE_TAG_PREFIX, StackConfig

STATE_TAG_PATTERN = STATE_TAG_PREFIX + "*"
ROTATOR_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)


def write_own_logs(log_group: logs.ILogGroup) -> iam.PolicyStatement:
    """What the AWS-managed basic execution role grants, limited to the function's log group."""
    return iam.PolicyStatement(
        sid="WriteOwnLogGroup",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group.log_group_arn],
    )


def scanner_statements(rotation_queue: sqs.IQueue) -> list[iam.PolicyStatement]:
    return [
        # NOTE: ListSecrets has no resource-level permissions; "*" is the only valid resource.
        iam.PolicyStatement(
            sid="ListSecrets",
            actions=["secretsmanager:ListSecrets"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="EnqueueRotations",
            actions=["sqs:SendMessage"],
            resources=[rotation_queue.queue_arn],
        ),
    ]


def rotator_statements(
    scope: IConstruct, config: StackConfig, dead_letter_queue: sqs.IQueue
) -> list[iam.PolicyStatement]:
    """Receiving from the rotation queue is granted by the event source, not here."""
    secrets = any_secret_arn(scope)
    opted_in = {"Null": {f"aws:ResourceTag/{config.tag_key}": "false"}}
    # ForAllValues passes when a request carries no tag keys at all, so require them too.
    state_tags_only = {
        "Null": {f"aws:ResourceTag/{config.tag_key}": "false", "aws:TagKeys": "false"},
        "ForAllValues:StringLike": {"aws:TagKeys": [STATE_TAG_PATTERN]},
    }
    statements = [
        iam.PolicyStatement(
            sid="RotateOptedInSecrets",
            actions=list(ROTATOR_SECRET_ACTIONS),
            resources=[secrets],
            conditions=opted_in,
        ),
        iam.PolicyStatement(
            sid="WriteRotationStateTags",
            actions=["secretsmanager:TagResource", "secretsmanager:UntagResource"],
            resources=[secrets],
            conditions=state_tags_only,
        ),
        iam.PolicyStatement(
            sid="DeadLetterPermanentFailures",
            actions=["sqs:SendMessage"],
            resources=[dead_letter_queue.queue_arn],
        ),
    ]
    if config.kms_key_arns:
        statements.append(
            iam.PolicyStatement(
                sid="UseSecretKeysThroughSecretsManager",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=list(config.kms_key_arns),
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}
                },
            )
        )
    return statements


def any_secret_arn(scope: IConstruct) -> str:
    """arn:<partition>:secretsmanager:<region>:<account>:secret:* for the stack's own place."""
    return Stack.of(scope).format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name="*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
