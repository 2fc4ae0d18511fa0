"""Optional settings change the stack the way their documentation says."""

from __future__ import annotations

import pytest
from infra_support import Synthesized, iter_actions, synthesize, unacknowledged_findings

KMS_KEYS = [
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321",
]
SETTINGS = {
    "tagKey": "rotate-momento",
    "scanIntervalMinutes": 30,
    "refreshWindowSeconds": 172_800,
    "maxConcurrency": 20,
    "batchSize": 4,
    "alarmEmail": "oncall@example.com",
    "kmsKeyArns": KMS_KEYS,
    "momentoEndpointOverride": "cell-4-us-west-2-1.prod.a.momentohq.com",
    "logLevel": "debug",
}


@pytest.fixture(scope="module")
def synthesized() -> Synthesized:
    return synthesize(SETTINGS)


def test_kms_keys_are_usable_only_through_secrets_manager(synthesized):
    kms = [
        (action, statement)
        for action, statement in iter_actions(synthesized.role_statements("RotatorRole"))
        if action.startswith("kms:")
    ]

    assert {action for action, _ in kms} == {"kms:Decrypt", "kms:GenerateDataKey"}
    for _, statement in kms:
        assert statement["Resource"] == KMS_KEYS
        assert statement["Condition"] == {
            "StringEquals": {
                "kms:ViaService": {
                    "Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
                }
            }
        }


def test_scanner_gets_no_kms_access_even_with_keys_configured(synthesized):
    actions = {action for action, _ in iter_actions(synthesized.role_statements("ScannerRole"))}

    assert not any(action.startswith("kms:") for action in actions)


def test_custom_tag_key_guards_every_rotator_secret_action(synthesized):
    for action, statement in iter_actions(synthesized.role_statements("RotatorRole")):
        if action.startswith("secretsmanager:"):
            assert statement["Condition"]["Null"]["aws:ResourceTag/rotate-momento"] == "false"
            assert "aws:ResourceTag/momento-token" not in statement["Condition"]["Null"]


def test_optional_settings_reach_the_function_environments(synthesized):
    scanner = synthesized.environment("Scanner")
    rotator = synthesized.environment("Rotator")

    assert scanner["TAG_KEY"] == rotator["TAG_KEY"] == "rotate-momento"
    assert scanner["SCAN_INTERVAL_SECONDS"] == rotator["SCAN_INTERVAL_SECONDS"] == "1800"
    assert scanner["REFRESH_WINDOW_SECONDS"] == rotator["REFRESH_WINDOW_SECONDS"] == "172800"
    assert scanner["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert rotator["MOMENTO_ENDPOINT_OVERRIDE"] == SETTINGS["momentoEndpointOverride"]
    assert "MOMENTO_ENDPOINT_OVERRIDE" not in scanner


def test_schedule_and_event_source_follow_the_settings(synthesized):
    rule = synthesized.one("AWS::Events::Rule", "ScanSchedule")["Properties"]
    (mapping,) = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()

    assert rule["ScheduleExpression"] == "rate(30 minutes)"
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 20
    assert mapping["Properties"]["BatchSize"] == 4


def test_alarm_email_subscribes_to_the_alarm_topic(synthesized):
    (subscription,) = synthesized.of_type("AWS::SNS::Subscription").values()
    topic_id = synthesized.logical_id("AWS::SNS::Topic", "AlarmsTopic")

    assert subscription["Properties"] == {
        "Protocol": "email",
        "Endpoint": "oncall@example.com",
        "TopicArn": {"Ref": topic_id},
    }


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings_with_options(synthesized):
    assert unacknowledged_findings(synthesized.app) == []
