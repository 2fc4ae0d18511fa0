"""The wiring a user depends on, read from the template synthesized with the default settings."""

from __future__ import annotations

from typing import Any

import pytest
from infra_support import Synthesized, iter_actions, synthesize, unacknowledged_findings

from infrastructure import permissions
from infrastructure.config import StackConfig
from keyrotation import state_tags

QUEUE = "AWS::SQS::Queue"
FUNCTION = "AWS::Lambda::Function"
ALARM = "AWS::CloudWatch::Alarm"
DEFAULTS = StackConfig()


@pytest.fixture(scope="module")
def synthesized() -> Synthesized:
    return synthesize()


def queue(synthesized: Synthesized, construct_id: str) -> dict[str, Any]:
    return synthesized.one(QUEUE, construct_id)["Properties"]


def alarm_on(synthesized: Synthesized, metric_name: str) -> dict[str, Any]:
    (alarm,) = [
        resource["Properties"]
        for resource in synthesized.of_type(ALARM).values()
        if resource["Properties"]["MetricName"] == metric_name
    ]
    return alarm


# --- queues -----------------------------------------------------------------------------------


def test_rotation_queue_is_fifo_and_redrives_to_the_dead_letter_queue(synthesized):
    # GIVEN the default settings
    # WHEN the stack is synthesized
    rotation = queue(synthesized, "RotationQueue")
    dlq_id = synthesized.logical_id(QUEUE, "DeadLetterQueue")

    # THEN messages carry their own deduplication ids and go to the DLQ after 5+ receives
    assert rotation["FifoQueue"] is True
    assert rotation["ContentBasedDeduplication"] is False
    assert rotation["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert rotation["RedrivePolicy"]["maxReceiveCount"] >= 5


def test_rotation_queue_visibility_covers_six_rotator_timeouts(synthesized):
    rotation = queue(synthesized, "RotationQueue")
    rotator = synthesized.one(FUNCTION, "Rotator")["Properties"]

    assert rotation["VisibilityTimeout"] >= 6 * rotator["Timeout"]


def test_dead_letter_queue_is_fifo_and_keeps_messages_fourteen_days(synthesized):
    dlq = queue(synthesized, "DeadLetterQueue")

    assert dlq["FifoQueue"] is True
    assert dlq["MessageRetentionPeriod"] == 1_209_600
    assert (
        dlq["MessageRetentionPeriod"]
        > queue(synthesized, "RotationQueue")["MessageRetentionPeriod"]
    )


@pytest.mark.parametrize("construct_id", ["RotationQueue", "DeadLetterQueue"])
def test_queues_are_encrypted_and_refuse_plain_http(synthesized, construct_id):
    queue_id = synthesized.logical_id(QUEUE, construct_id)
    (policy,) = [
        resource["Properties"]
        for resource in synthesized.of_type("AWS::SQS::QueuePolicy").values()
        if resource["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]

    assert queue(synthesized, construct_id)["SqsManagedSseEnabled"] is True
    assert {
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }.items() <= policy["PolicyDocument"]["Statement"][0].items()


# --- functions --------------------------------------------------------------------------------


def test_rotator_event_source_reports_batch_item_failures_and_caps_concurrency(synthesized):
    (mapping,) = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]

    # Without this flag a normal return deletes every message of the batch, failed or not.
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"]["MaximumConcurrency"] == DEFAULTS.max_concurrency
    assert properties["BatchSize"] == DEFAULTS.batch_size
    assert "MaximumBatchingWindowInSeconds" not in properties
    assert properties["EventSourceArn"] == {
        "Fn::GetAtt": [synthesized.logical_id(QUEUE, "RotationQueue"), "Arn"]
    }


@pytest.mark.parametrize("function_id", ["Scanner", "Rotator"])
def test_functions_run_python_312_or_newer_on_arm64(synthesized, function_id):
    properties = synthesized.one(FUNCTION, function_id)["Properties"]
    major, minor = properties["Runtime"].removeprefix("python").split(".")

    assert (int(major), int(minor)) >= (3, 12)
    assert properties["Architectures"] == ["arm64"]


@pytest.mark.parametrize(
    ("function_id", "handler"),
    [("Scanner", "scanner.handler.lambda_handler"), ("Rotator", "rotator.handler.lambda_handler")],
)
def test_functions_point_at_their_handlers(synthesized, function_id, handler):
    assert synthesized.one(FUNCTION, function_id)["Properties"]["Handler"] == handler


@pytest.mark.parametrize("role_id", ["ScannerRole", "RotatorRole"])
def test_functions_use_their_own_roles_without_managed_policies(synthesized, role_id):
    logical_id = synthesized.logical_id("AWS::IAM::Role", role_id)
    role = synthesized.of_type("AWS::IAM::Role")[logical_id]["Properties"]
    log_writes = [
        statement
        for action, statement in iter_actions(synthesized.role_statements(role_id))
        if action == "logs:PutLogEvents"
    ]

    assert "ManagedPolicyArns" not in role
    assert len(log_writes) == 1
    assert log_writes[0]["Resource"]["Fn::GetAtt"][0].startswith(role_id.removesuffix("Role"))


def test_scanner_environment_follows_the_settings_contract(synthesized):
    environment = synthesized.environment("Scanner")

    assert environment == {
        "TAG_KEY": "momento-token",
        "SCAN_INTERVAL_SECONDS": "3600",
        "MAX_RECEIVE_COUNT": "5",
        "VISIBILITY_TIMEOUT_SECONDS": "360",
        "POWERTOOLS_SERVICE_NAME": "momento-key-scanner",
        "POWERTOOLS_METRICS_NAMESPACE": "MomentoKeyRotation",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "BACKOFF_BASE_SECONDS": "300",
        "ROTATION_QUEUE_URL": {"Ref": synthesized.logical_id(QUEUE, "RotationQueue")},
    }


def test_rotator_environment_follows_the_settings_contract(synthesized):
    environment = synthesized.environment("Rotator")

    assert environment == {
        "TAG_KEY": "momento-token",
        "SCAN_INTERVAL_SECONDS": "3600",
        "MAX_RECEIVE_COUNT": "5",
        "VISIBILITY_TIMEOUT_SECONDS": "360",
        "POWERTOOLS_SERVICE_NAME": "momento-key-rotator",
        "POWERTOOLS_METRICS_NAMESPACE": "MomentoKeyRotation",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "BACKOFF_BASE_SECONDS": "300",
        "ROTATION_QUEUE_URL": {"Ref": synthesized.logical_id(QUEUE, "RotationQueue")},
        "DEAD_LETTER_QUEUE_URL": {"Ref": synthesized.logical_id(QUEUE, "DeadLetterQueue")},
    }


def test_scanner_runs_on_the_configured_rate(synthesized):
    rule = synthesized.one("AWS::Events::Rule", "ScanSchedule")["Properties"]

    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Targets"][0]["Arn"] == {
        "Fn::GetAtt": [synthesized.logical_id(FUNCTION, "Scanner"), "Arn"]
    }


# --- permissions ------------------------------------------------------------------------------


def test_scanner_policy_cannot_read_secret_values(synthesized):
    actions = {action for action, _ in iter_actions(synthesized.role_statements("ScannerRole"))}

    assert "secretsmanager:GetSecretValue" not in actions
    assert not any(action.endswith("*") for action in actions)


def test_scanner_policy_lists_secrets_as_its_only_action_on_every_resource(synthesized):
    statements = synthesized.role_statements("ScannerRole")
    on_everything = [action for action, st in iter_actions(statements) if st["Resource"] == "*"]
    sends = [
        st["Resource"] for action, st in iter_actions(statements) if action == "sqs:SendMessage"
    ]

    assert on_everything == ["secretsmanager:ListSecrets"]
    assert sends == [{"Fn::GetAtt": [synthesized.logical_id(QUEUE, "RotationQueue"), "Arn"]}]


def test_rotator_secret_actions_all_require_the_opt_in_tag(synthesized):
    secret_statements = [
        (action, statement)
        for action, statement in iter_actions(synthesized.role_statements("RotatorRole"))
        if action.startswith("secretsmanager:")
    ]

    assert {action for action, _ in secret_statements} == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
    }
    for action, statement in secret_statements:
        null_condition = statement["Condition"]["Null"]
        assert null_condition["aws:ResourceTag/momento-token"] == "false", action


@pytest.mark.parametrize("action", ["secretsmanager:TagResource", "secretsmanager:UntagResource"])
def test_rotator_may_only_write_its_own_state_tags(synthesized, action):
    (statement,) = [
        statement
        for found, statement in iter_actions(synthesized.role_statements("RotatorRole"))
        if found == action
    ]

    assert statement["Condition"]["ForAllValues:StringLike"] == {
        "aws:TagKeys": ["momento-rotation:*"]
    }
    # ForAllValues alone would also pass a request that names no tag keys.
    assert statement["Condition"]["Null"]["aws:TagKeys"] == "false"


def test_rotator_state_tag_permission_matches_the_tags_it_writes():
    assert permissions.STATE_TAG_PATTERN == state_tags.PREFIX + "*"
    for tag in (state_tags.EXPIRY_TAG, state_tags.LAST_ROTATED_TAG, state_tags.FAILURE_TAG):
        assert tag.startswith(state_tags.PREFIX)


def test_rotator_dead_letters_only_to_the_dead_letter_queue(synthesized):
    sends = [
        statement["Resource"]
        for action, statement in iter_actions(synthesized.role_statements("RotatorRole"))
        if action == "sqs:SendMessage"
    ]

    assert sends == [{"Fn::GetAtt": [synthesized.logical_id(QUEUE, "DeadLetterQueue"), "Arn"]}]


def test_rotator_gets_no_kms_access_without_configured_keys(synthesized):
    actions = {action for action, _ in iter_actions(synthesized.role_statements("RotatorRole"))}

    assert not any(action.startswith("kms:") for action in actions)


# --- alarms and outputs -----------------------------------------------------------------------


def test_dead_letter_alarm_fires_on_the_first_visible_message(synthesized):
    alarm = alarm_on(synthesized, "ApproximateNumberOfMessagesVisible")

    assert alarm["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": {
                "Fn::GetAtt": [synthesized.logical_id(QUEUE, "DeadLetterQueue"), "QueueName"]
            },
        }
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("metric_name", "service", "missing_data", "periods"),
    [
        # A scan reports once per interval: an empty bucket keeps the alarm's state.
        ("SecretsExpired", "momento-key-scanner", "ignore", 1),
        ("SecretsNotRefreshableNearExpiry", "momento-key-scanner", "ignore", 1),
        ("SecretsFailing", "momento-key-scanner", "ignore", 1),
        ("SecretsOverdue", "momento-key-scanner", "ignore", 1),
        ("RotationDeadlineAtRisk", "momento-key-rotator", "notBreaching", 1),
        # One skip is a secret untagged after a scan; three scans in a row is a blind rotator.
        ("RotationSkipped", "momento-key-rotator", "notBreaching", 3),
    ],
)
def test_custom_metric_alarms_watch_what_powertools_emits(
    synthesized, metric_name, service, missing_data, periods
):
    alarm = alarm_on(synthesized, metric_name)

    assert alarm["Namespace"] == "MomentoKeyRotation"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == missing_data
    assert alarm["EvaluationPeriods"] == periods


def test_rotation_queue_alarm_fires_when_work_outlives_its_retries(synthesized):
    alarm = alarm_on(synthesized, "ApproximateAgeOfOldestMessage")

    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": {"Fn::GetAtt": [synthesized.logical_id(QUEUE, "RotationQueue"), "QueueName"]},
        }
    ]
    assert alarm["Threshold"] == DEFAULTS.retry_budget_seconds + 2 * DEFAULTS.scan_interval_seconds


def test_scanner_errors_alarm_fires_on_one_error(synthesized):
    alarm = alarm_on(synthesized, "Errors")

    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_scanner_not_running_alarm_treats_silence_as_a_failure(synthesized):
    alarm = alarm_on(synthesized, "Invocations")

    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["Period"] == 2 * DEFAULTS.scan_interval_seconds
    assert alarm["TreatMissingData"] == "breaching"


def test_every_alarm_notifies_the_topic(synthesized):
    topic_id = synthesized.logical_id("AWS::SNS::Topic", "AlarmsTopic")
    alarms = synthesized.of_type(ALARM).values()

    assert len(alarms) == 10
    assert all(alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for alarm in alarms)


def test_alarm_topic_refuses_plain_http_and_has_no_subscription_by_default(synthesized):
    (policy,) = synthesized.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for st in statements
    )
    assert any(st.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for st in statements)
    assert synthesized.of_type("AWS::SNS::Subscription") == {}


def test_outputs_name_the_queues_functions_and_topic(synthesized):
    outputs = synthesized.template.to_json()["Outputs"]

    assert set(outputs) >= {
        "RotationQueueUrl",
        "DeadLetterQueueUrl",
        "ScannerFunctionName",
        "RotatorFunctionName",
        "AlarmTopicArn",
    }


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synthesized):
    assert unacknowledged_findings(synthesized.app) == []
