"""The one stack: a scheduled scanner, a FIFO rotation queue, the rotator and its dead letters.

    EventBridge schedule -> scanner -> rotation queue (FIFO, a group per secret) -> rotator
                                             | after maxReceiveCount            | permanent failure
                                             v                                  v
                                        dead-letter queue (FIFO) <--------------+
                                             |
                                             v
                                   alarms -> SNS topic -> email

The stack is environment-agnostic: region and account are CloudFormation pseudo parameters, so
it synthesizes offline and deploys to whatever account the credentials point at.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure import permissions
from infrastructure.alarms import RotationAlarms
from infrastructure.bundling import function_code
from infrastructure.config import StackConfig

STACK_NAME = "MomentoKeyRotation"
# MAINTENANCE: newer Python runtimes exist, but the bundle is byte-compiled by an interpreter of
# the runtime's minor version, and 3.12 is the newest every developer and CI machine has. Move
# with the toolchain, then drop the AwsSolutions-L1 acknowledgments.
RUNTIME = lambda_.Runtime.PYTHON_3_12
RUNTIME_REASON = (
    "The functions are built, byte-compiled and tested with Python 3.12, the newest interpreter "
    "on every machine of the project's toolchain; newer runtimes follow when the toolchain moves."
)
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
SCANNER_HANDLER = "scanner.handler.lambda_handler"
ROTATOR_HANDLER = "rotator.handler.lambda_handler"


class MomentoKeyRotationStack(Stack):
    """Everything the key rotation needs, configured by a `StackConfig`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config

        self.dead_letter_queue = self._dead_letter_queue()
        self.rotation_queue = self._rotation_queue()
        self.scanner = self._scanner()
        self.rotator = self._rotator()
        self.alarms = RotationAlarms(
            self,
            "Alarms",
            config=config,
            dead_letter_queue=self.dead_letter_queue,
            rotation_queue=self.rotation_queue,
            scanner=self.scanner,
        )

        self._outputs()
        self._acknowledge_findings()

    def _dead_letter_queue(self) -> sqs.Queue:
        """Where rotations end that failed for good: sent by the rotator, or redriven by SQS."""
        return sqs.Queue(
            self,
            "DeadLetterQueue",
            fifo=True,
            content_based_deduplication=False,
            retention_period=Duration.days(self.config.dlq_retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

    def _rotation_queue(self) -> sqs.Queue:
        """One message group per secret, so two rotations of one secret never run at once.

        Messages carry explicit deduplication ids, so content-based deduplication stays off.
        """
        return sqs.Queue(
            self,
            "RotationQueue",
            fifo=True,
            content_based_deduplication=False,
            visibility_timeout=Duration.seconds(self.config.visibility_timeout_seconds),
            retention_period=Duration.days(self.config.queue_retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=self.config.max_receive_count, queue=self.dead_letter_queue
            ),
        )

    def _scanner(self) -> lambda_.Function:
        environment = self.config.function_environment(
            "scanner", rotation_queue_url=self.rotation_queue.queue_url
        )
        scanner = self._function(
            "Scanner",
            package="scanner",
            handler=SCANNER_HANDLER,
            description="Lists opted-in secrets and queues the Momento keys that are due.",
            timeout_seconds=self.config.scanner_timeout_seconds,
            environment=environment,
            statements=permissions.scanner_statements(self.rotation_queue),
        )

        interval = Duration.minutes(self.config.scan_interval_minutes)
        events.Rule(
            self,
            "ScanSchedule",
            description="Runs the Momento key scanner.",
            schedule=events.Schedule.rate(interval),
            # A scan that cannot start before the next one is due is no longer worth running.
            targets=[targets.LambdaFunction(scanner, max_event_age=interval, retry_attempts=2)],
        )
        return scanner

    def _rotator(self) -> lambda_.Function:
        environment = self.config.function_environment(
            "rotator",
            rotation_queue_url=self.rotation_queue.queue_url,
            dead_letter_queue_url=self.dead_letter_queue.queue_url,
        )
        rotator = self._function(
            "Rotator",
            package="rotator",
            handler=ROTATOR_HANDLER,
            description="Refreshes due Momento keys and stores them as new secret versions.",
            timeout_seconds=self.config.rotator_timeout_seconds,
            environment=environment,
            statements=permissions.rotator_statements(self, self.config, self.dead_letter_queue),
        )
        # Without ReportBatchItemFailures a normal return would delete every message in the batch.
        # MaximumConcurrency caps parallelism without the throttling that reserved concurrency
        # causes (throttled receives count towards maxReceiveCount and end in the DLQ).
        rotator.add_event_source(
            event_sources.SqsEventSource(
                self.rotation_queue,
                batch_size=self.config.batch_size,
                report_batch_item_failures=True,
                max_concurrency=self.config.max_concurrency,
            )
        )
        return rotator

    def _function(
        self,
        construct_id: str,
        *,
        package: str,
        handler: str,
        description: str,
        timeout_seconds: int,
        environment: dict[str, str],
        statements: list[iam.PolicyStatement],
    ) -> lambda_.Function:
        """A function with its own log group and a role that holds only `statements`."""
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=LOG_RETENTION)
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the Momento key {package}.",
        )
        role.add_to_policy(permissions.write_own_logs(log_group))
        for statement in statements:
            role.add_to_policy(statement)

        return lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=function_code(package, RUNTIME),
            timeout=Duration.seconds(timeout_seconds),
            memory_size=self.config.memory_mb,
            environment=environment,
            log_group=log_group,
            role=role,
        )

    def _outputs(self) -> None:
        outputs = {
            "RotationQueueUrl": self.rotation_queue.queue_url,
            "DeadLetterQueueUrl": self.dead_letter_queue.queue_url,
            "ScannerFunctionName": self.scanner.function_name,
            "RotatorFunctionName": self.rotator.function_name,
            "AlarmTopicArn": self.alarms.topic.topic_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

    def _acknowledge_findings(self) -> None:
        """cdk-nag findings that are deliberate, each with the reason it is."""
        secret_arn = "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:*"
        acknowledgments = [
            (
                self.node.find_child("ScannerRole"),
                "AwsSolutions-IAM5[Resource::*]",
                "secretsmanager:ListSecrets supports no resource-level permissions; it is the "
                "only action on '*' and returns metadata, never secret values.",
            ),
            (
                self.node.find_child("RotatorRole"),
                f"AwsSolutions-IAM5[Resource::{secret_arn}]",
                "The opted-in secrets are not known at deploy time: every statement on secret:* "
                "requires the opt-in tag (aws:ResourceTag Null=false), and tagging is limited to "
                "the rotator's own state tags.",
            ),
            (self.scanner, "AwsSolutions-L1", RUNTIME_REASON),
            (self.rotator, "AwsSolutions-L1", RUNTIME_REASON),
        ]
        for construct, rule, reason in acknowledgments:
            Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
