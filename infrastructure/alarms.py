"""Alarms that tell a person when keys are at risk, sent to one SNS topic.

Only the dead-letter queue and the scanner's own health come from AWS metrics. The rest are
custom metrics the functions emit with Powertools (CloudWatch embedded metric format), which
puts them in the `MomentoKeyRotation` namespace with a `service` dimension naming the function.

Scanner metrics are judged over one scan interval, because each scan reports once, and an
interval without a datapoint (a scan that landed in the next bucket) keeps the alarm's state: it
stays in ALARM until a later scan reports the problem gone, instead of flapping between scans.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.config import (
    METRICS_NAMESPACE,
    ROTATOR_SERVICE_NAME,
    SCANNER_SERVICE_NAME,
    StackConfig,
)

ROTATOR_ALARM_PERIOD = Duration.minutes(5)
DEAD_LETTER_ALARM_PERIOD = Duration.minutes(5)


class RotationAlarms(Construct):
    """The alarm topic, its optional email subscription, and the alarms that publish to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        dead_letter_queue: sqs.IQueue,
        rotation_queue: sqs.IQueue,
        scanner: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = Stack.of(self).stack_name
        self._scan_period = Duration.minutes(config.scan_interval_minutes)
        self._two_scans = Duration.minutes(2 * config.scan_interval_minutes)

        # NOTE: no KMS key on the topic. CloudWatch cannot publish to a topic encrypted with the
        # AWS-managed SNS key, and the notifications carry alarm names and numbers, no secrets.
        self.topic = sns.Topic(
            self, "Topic", display_name="Momento key rotation alarms", enforce_ssl=True
        )
        self._allow_cloudwatch_to_publish()
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._action = actions.SnsAction(self.topic)

        self._alarm(
            "DeadLetters",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=DEAD_LETTER_ALARM_PERIOD, statistic="Maximum"
            ),
            "Rotations failed for good and wait in the dead-letter queue. Read the messages' "
            "reason, fix the cause, then replay them.",
        )
        self._alarm(
            "RotationQueueStuck",
            rotation_queue.metric_approximate_age_of_oldest_message(
                period=DEAD_LETTER_ALARM_PERIOD, statistic="Maximum"
            ),
            "Work has waited on the rotation queue longer than its retries can take: the rotator "
            "is not consuming it (event source disabled, function failing to start).",
            threshold=config.retry_budget_seconds + 2 * config.scan_interval_seconds,
        )
        self._alarm(
            "SecretsOverdue",
            self._custom_metric("SecretsOverdue", SCANNER_SERVICE_NAME, "Maximum"),
            "A key is inside its refresh window with less than a day (or the retry budget) left "
            "and has not been rotated. Run momento-keys status and momento-keys dlq list.",
            missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self._alarm(
            "RotationsSkippedRepeatedly",
            self._custom_metric("RotationSkipped", ROTATOR_SERVICE_NAME, "Sum"),
            "The rotator skipped queued secrets in three scans in a row. A secret untagged or "
            "deleted after a scan is skipped once; every scan means the rotator cannot see the "
            "secrets (check the tag key and the rotator's IAM policy).",
            evaluation_periods=3,
        )
        self._alarm(
            "SecretsExpired",
            self._custom_metric("SecretsExpired", SCANNER_SERVICE_NAME, "Maximum"),
            "An opted-in secret holds an expired key. It can no longer be refreshed: a person "
            "must create a new key and store it in the secret.",
            missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self._alarm(
            "SecretsNotRefreshableNearExpiry",
            self._custom_metric("SecretsNotRefreshableNearExpiry", SCANNER_SERVICE_NAME, "Maximum"),
            "An opted-in secret's key expires soon and cannot be refreshed automatically (for "
            "example it has no refresh token). Replace it by hand before it expires.",
            missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self._alarm(
            "SecretsFailing",
            self._custom_metric("SecretsFailing", SCANNER_SERVICE_NAME, "Maximum"),
            "An opted-in secret's last rotation failed for good and the scanner no longer queues "
            "it. This stays on after the dead-letter message is gone: run momento-keys status.",
            missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self._alarm(
            "RotationDeadlineAtRisk",
            self._custom_metric(
                "RotationDeadlineAtRisk", ROTATOR_SERVICE_NAME, "Sum", ROTATOR_ALARM_PERIOD
            ),
            "A rotation keeps failing and the key may expire before its retries run out.",
        )
        self._alarm(
            "ScannerErrors",
            scanner.metric_errors(period=self._scan_period, statistic="Sum"),
            "The scanner failed; secrets are not being checked for expiry.",
        )
        self._alarm(
            "ScannerNotRunning",
            scanner.metric_invocations(period=self._two_scans, statistic="Sum"),
            "The scanner has not run for two scan intervals; check its schedule rule.",
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

    def _custom_metric(
        self, name: str, service: str, statistic: str, period: Duration | None = None
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": service},
            statistic=statistic,
            period=period or self._scan_period,
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        threshold: float = 1,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=missing_data,
        )
        alarm.add_alarm_action(self._action)
        return alarm

    def _allow_cloudwatch_to_publish(self) -> None:
        """A topic policy replaces SNS's default one, so CloudWatch needs its own statement."""
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
