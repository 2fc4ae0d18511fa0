"""Deployment settings: defaults, how cdk.json maps onto them, and the errors a typo gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.config import CONTEXT_KEY, StackConfig
from keyrotation.settings import Settings

REPO_CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def from_block(**block: object) -> StackConfig:
    return StackConfig.from_context({CONTEXT_KEY: block})


def test_config_defaults_match_the_documented_ones():
    config = StackConfig()

    assert config.tag_key == "momento-token"
    assert config.scan_interval_minutes == 60
    assert config.refresh_window_seconds is None
    assert (config.rotator_timeout_seconds, config.scanner_timeout_seconds) == (60, 300)
    assert config.visibility_timeout_seconds == 360
    assert (config.max_receive_count, config.max_concurrency, config.batch_size) == (5, 5, 10)
    assert (config.queue_retention_days, config.dlq_retention_days) == (4, 14)
    assert config.alarm_email is None
    assert config.kms_key_arns == ()


def test_config_from_the_repository_cdk_json_is_the_default():
    assert StackConfig.from_cdk_json(REPO_CDK_JSON) == StackConfig()


def test_config_reads_camel_case_settings_and_treats_null_as_default():
    config = from_block(scanIntervalMinutes=15, alarmEmail=None, kmsKeyArns=[], maxConcurrency=50)

    assert config.scan_interval_minutes == 15
    assert config.alarm_email is None
    assert config.max_concurrency == 50


def test_config_accepts_the_block_as_json_text_as_cdk_dash_c_passes_it():
    config = StackConfig.from_context({CONTEXT_KEY: json.dumps({"batchSize": 3})})

    assert config.batch_size == 3


def test_config_from_cdk_json_reads_the_context_block(tmp_path):
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "x", "context": {CONTEXT_KEY: {"memoryMb": 512}}}))

    assert StackConfig.from_cdk_json(path).memory_mb == 512


def test_config_without_a_block_uses_the_defaults():
    assert StackConfig.from_context({"cli-telemetry": False}) == StackConfig()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param(
            {"visibilityTimeoutSeconds": 300},
            r"visibilityTimeoutSeconds must be between 360 and 43200 \(at least 6 x rotatorTim",
            id="visibility-below-six-rotator-timeouts",
        ),
        pytest.param(
            {"rotatorTimeoutSeconds": 120},
            r"visibilityTimeoutSeconds must be between 720",
            id="longer-rotator-timeout-without-longer-visibility",
        ),
        pytest.param({"maxReceiveCount": 4}, r"maxReceiveCount must be between 5", id="receives"),
        pytest.param({"maxConcurrency": 1}, r"maxConcurrency must be between 2 and 1000", id="c1"),
        pytest.param({"maxConcurrency": 1001}, r"maxConcurrency must be between 2", id="c1001"),
        pytest.param({"batchSize": 11}, r"batchSize must be between 1 and 10", id="fifo-batch"),
        pytest.param(
            {"dlqRetentionDays": 4}, r"dlqRetentionDays must be between 5", id="dlq-short"
        ),
        pytest.param(
            {"dlqRetentionDays": 15}, r"dlqRetentionDays must be between 5 and 14", id="dlq"
        ),
        pytest.param(
            {"refreshWindowSeconds": 3_600},
            r"refreshWindowSeconds must be at least 86400",
            id="refresh-window-shorter-than-the-retries",
        ),
        pytest.param(
            {"visibilityTimeoutSeconds": 43_200, "maxReceiveCount": 10, "queueRetentionDays": 4},
            r"queueRetentionDays \(4\) must outlast",
            id="messages-would-expire-before-dead-lettering",
        ),
        pytest.param({"scanIntervalMinutes": 0}, r"scanIntervalMinutes must be between 1", id="s0"),
        pytest.param({"scanIntervalMinutes": "60"}, r"scanIntervalMinutes must be a whole", id="t"),
        pytest.param({"batchSize": True}, r"batchSize must be a whole number", id="bool-count"),
        pytest.param({"tagKey": ""}, r"tagKey must be a Secrets Manager tag key", id="empty-tag"),
        pytest.param({"tagKey": "aws:x"}, r"reserved aws: prefix", id="aws-tag"),
        pytest.param(
            {"tagKey": "momento-rotation:opt-in"},
            r"tagKey must not start with 'momento-rotation:'",
            id="tag-key-the-rotator-could-write",
        ),
        pytest.param(
            {"kmsKeyArns": ["arn:aws:kms:us-east-1:111122223333:alias/secrets"]},
            r"kmsKeyArns\[0\] must be a KMS key ARN",
            id="kms-alias",
        ),
        pytest.param({"kmsKeyArns": "arn:aws:kms:x"}, r"kmsKeyArns must be a list", id="kms-str"),
        pytest.param({"alarmEmail": "oncall"}, r"alarmEmail must be an email address", id="email"),
        pytest.param({"logLevel": "verbose"}, r"logLevel must be one of DEBUG", id="log-level"),
        pytest.param({"memoryMb": 64}, r"memoryMb must be between 128 and 10240", id="memory"),
        pytest.param(
            {"scanIntervalMinute": 30},
            r"unknown momentoKeyRotation setting\(s\) scanIntervalMinute; known settings: ",
            id="typo-is-not-ignored",
        ),
    ],
)
def test_config_refuses_invalid_settings_naming_the_setting(block, message):
    with pytest.raises(ValueError, match=message):
        StackConfig.from_context({CONTEXT_KEY: block})


def test_config_refuses_a_block_that_is_not_an_object():
    with pytest.raises(ValueError, match=r"momentoKeyRotation must be an object"):
        StackConfig.from_context({CONTEXT_KEY: ["scanIntervalMinutes"]})


def test_config_environment_round_trips_through_the_functions_settings_parser():
    # GIVEN every optional setting set
    config = from_block(
        tagKey="rotate-me",
        scanIntervalMinutes=20,
        refreshWindowSeconds=200_000,
        maxReceiveCount=7,
        visibilityTimeoutSeconds=600,
        backoffBaseSeconds=90,
        momentoEndpointOverride="127.0.0.1:50051",
    )

    # WHEN each function parses the environment the stack gives it
    scanner = Settings.from_env(config.function_environment("scanner", rotation_queue_url="q"))
    rotator = Settings.from_env(config.function_environment("rotator", dead_letter_queue_url="d"))

    # THEN both see the deployment's values
    for settings in (scanner, rotator):
        assert settings.tag_key == "rotate-me"
        assert settings.scan_interval_seconds == 1_200
        assert settings.refresh_window_seconds == 200_000
        assert settings.max_receive_count == 7
        assert settings.visibility_timeout_seconds == 600
    assert scanner.rotation_queue_url == "q"
    assert rotator.dead_letter_queue_url == "d"
    assert rotator.backoff_base_seconds == 90
    assert rotator.momento_endpoint_override == "127.0.0.1:50051"


def test_config_environment_leaves_unset_options_to_the_functions_defaults():
    environment = StackConfig().function_environment("rotator")

    assert "REFRESH_WINDOW_SECONDS" not in environment
    assert "MOMENTO_ENDPOINT_OVERRIDE" not in environment
    assert "DEAD_LETTER_QUEUE_URL" not in environment
