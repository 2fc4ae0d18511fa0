"""Deployment settings, read from the `momentoKeyRotation` block of the CDK context.

Pure Python on purpose: the local environment imports this module to give its emulated
functions exactly the environment the deployed ones get, without loading the CDK.

In cdk.json every setting is camelCase; in Python it is the snake_case field of `StackConfig`:

    "context": {"momentoKeyRotation": {"scanIntervalMinutes": 60, "alarmEmail": null, ...}}

A setting that is missing or null takes its default. `StackConfig` checks every value when it is
built and raises `ValueError` naming the setting, so a bad deployment fails at synth time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from keyrotation.settings import DAY, Settings

CONTEXT_KEY = "momentoKeyRotation"
METRICS_NAMESPACE = "MomentoKeyRotation"
SCANNER_SERVICE_NAME = "momento-key-scanner"
ROTATOR_SERVICE_NAME = "momento-key-rotator"
# The rotator keeps its state in tags under this prefix; see keyrotation.state_tags.
STATE_TAG_PREFIX = "momento-rotation:"

FunctionRole = Literal["scanner", "rotator"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Limits set by AWS, in the units of the settings that meet them.
LAMBDA_MAX_TIMEOUT_SECONDS = 900
LAMBDA_MEMORY_MB = (128, 10_240)
SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200
SQS_MAX_RETENTION_DAYS = 14
SQS_MAX_RECEIVE_COUNT = 1_000
FIFO_MAX_BATCH_SIZE = 10
EVENT_SOURCE_CONCURRENCY = (2, 1_000)
TAG_KEY_MAX_LENGTH = 128
# Recommended by AWS for a queue that feeds a Lambda function.
VISIBILITY_TO_TIMEOUT_RATIO = 6
MIN_RECEIVE_COUNT = 5
# The scanner-not-running alarm looks back over two intervals; keeping that within a day keeps
# the alarm inside CloudWatch's evaluation limits and a missed scan noticed the same day.
MAX_SCAN_INTERVAL_MINUTES = 720

_KINDS: dict[str, type] = {"int": int, "str": str, "tuple": tuple}
_TAG_KEY_PATTERN = re.compile(r"^[\w .:/=+\-@]+$")
_KMS_KEY_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class StackConfig:
    """Every deployment setting, validated. Times are in the unit their name ends with."""

    tag_key: str = "momento-token"
    scan_interval_minutes: int = 60
    refresh_window_seconds: int | None = None
    rotator_timeout_seconds: int = 60
    scanner_timeout_seconds: int = 300
    visibility_timeout_seconds: int = 360
    max_receive_count: int = 5
    max_concurrency: int = 5
    batch_size: int = 10
    queue_retention_days: int = 4
    dlq_retention_days: int = 14
    backoff_base_seconds: int = 300
    alarm_email: str | None = None
    kms_key_arns: tuple[str, ...] = ()
    momento_endpoint_override: str | None = None
    log_level: str = "INFO"
    memory_mb: int = 256

    def __post_init__(self) -> None:
        if isinstance(self.kms_key_arns, list):
            object.__setattr__(self, "kms_key_arns", tuple(self.kms_key_arns))
        _check_types(self)
        self._check_tag_key()
        self._check_timing()
        self._check_queues()
        self._check_options()

    @classmethod
    def from_context(cls, ctx: Mapping[str, Any]) -> StackConfig:
        """Build the settings from a whole CDK context (the `context` block of cdk.json).

        The `momentoKeyRotation` entry may be a mapping or, as `cdk -c` passes it, a JSON string.
        Unknown settings are refused rather than ignored, so a typo cannot fall back to a default.
        """
        block = ctx.get(CONTEXT_KEY) or {}
        if isinstance(block, str):
            try:
                block = json.loads(block)
            except json.JSONDecodeError as error:
                raise ValueError(f"{CONTEXT_KEY} must be a JSON object: {error}") from None
        if not isinstance(block, Mapping):
            raise ValueError(f"{CONTEXT_KEY} must be an object, got {type(block).__name__}")

        known = {_camel(field.name): field.name for field in fields(cls)}
        unknown = sorted(set(block) - set(known))
        if unknown:
            raise ValueError(
                f"unknown {CONTEXT_KEY} setting(s) {', '.join(unknown)}; "
                f"known settings: {', '.join(sorted(known))}"
            )

        values = {known[key]: value for key, value in block.items() if value is not None}
        return cls(**values)

    @classmethod
    def from_cdk_json(cls, path: str | Path = "cdk.json") -> StackConfig:
        """Build the settings from the context block of a cdk.json file."""
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_context(document.get("context") or {})

    @property
    def scan_interval_seconds(self) -> int:
        return self.scan_interval_minutes * 60

    def runtime_settings(self) -> Settings:
        """The functions' own view of these settings: one source for the retry arithmetic."""
        return Settings(
            scan_interval_seconds=self.scan_interval_seconds,
            max_receive_count=self.max_receive_count,
            visibility_timeout_seconds=self.visibility_timeout_seconds,
            backoff_base_seconds=self.backoff_base_seconds,
        )

    @property
    def retry_budget_seconds(self) -> int:
        """The longest a rotation can stay on the queue before it is dead-lettered.

        Normally the rotator's back-off sets the pace; a function that crashes or times out
        every time is retried at the visibility timeout instead. Whichever is longer counts.
        """
        back_off = self.runtime_settings().retry_budget_seconds() + self.visibility_timeout_seconds
        crashing = self.max_receive_count * self.visibility_timeout_seconds
        return max(back_off, crashing)

    def function_environment(
        self,
        role: FunctionRole,
        *,
        rotation_queue_url: str | None = None,
        dead_letter_queue_url: str | None = None,
    ) -> dict[str, str]:
        """The environment variables of one function, as `keyrotation.settings` reads them.

        Queue URLs are only known once the queues exist, so the caller passes them; a URL left
        as None is left out and the caller must add it. Optional settings that are unset are left
        out too, so the function applies its own default.
        """
        service = SCANNER_SERVICE_NAME if role == "scanner" else ROTATOR_SERVICE_NAME
        environment = {
            "TAG_KEY": self.tag_key,
            "SCAN_INTERVAL_SECONDS": str(self.scan_interval_seconds),
            "MAX_RECEIVE_COUNT": str(self.max_receive_count),
            "VISIBILITY_TIMEOUT_SECONDS": str(self.visibility_timeout_seconds),
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": self.log_level.upper(),
        }
        if self.refresh_window_seconds is not None:
            environment["REFRESH_WINDOW_SECONDS"] = str(self.refresh_window_seconds)

        # Both derive the minimum refresh window from the retry schedule, so both need it.
        environment["BACKOFF_BASE_SECONDS"] = str(self.backoff_base_seconds)
        # The scanner sends to the queue; the rotator spaces out retries on it.
        _put_if_set(environment, "ROTATION_QUEUE_URL", rotation_queue_url)
        if role == "scanner":
            return environment
        _put_if_set(environment, "DEAD_LETTER_QUEUE_URL", dead_letter_queue_url)
        _put_if_set(environment, "MOMENTO_ENDPOINT_OVERRIDE", self.momento_endpoint_override)
        return environment

    def _check_tag_key(self) -> None:
        key = self.tag_key
        if not key or len(key) > TAG_KEY_MAX_LENGTH or not _TAG_KEY_PATTERN.match(key):
            raise ValueError(
                f"tagKey must be a Secrets Manager tag key of 1 to {TAG_KEY_MAX_LENGTH} letters, "
                f"digits, spaces or _.:/=+-@, got {key!r}"
            )
        if key.lower().startswith("aws:"):
            raise ValueError(f"tagKey must not use the reserved aws: prefix, got {key!r}")
        if key.startswith(STATE_TAG_PREFIX):
            raise ValueError(
                f"tagKey must not start with {STATE_TAG_PREFIX!r}: the rotator may write tags "
                f"with that prefix, so it could opt secrets in by itself"
            )

    def _check_timing(self) -> None:
        _check_range(
            "scanIntervalMinutes", self.scan_interval_minutes, 1, MAX_SCAN_INTERVAL_MINUTES
        )
        _check_range(
            "rotatorTimeoutSeconds", self.rotator_timeout_seconds, 1, LAMBDA_MAX_TIMEOUT_SECONDS
        )
        _check_range(
            "scannerTimeoutSeconds", self.scanner_timeout_seconds, 1, LAMBDA_MAX_TIMEOUT_SECONDS
        )
        _check_range(
            "backoffBaseSeconds", self.backoff_base_seconds, 1, SQS_MAX_VISIBILITY_TIMEOUT_SECONDS
        )
        _check_range("memoryMb", self.memory_mb, *LAMBDA_MEMORY_MB)

        minimum_visibility = VISIBILITY_TO_TIMEOUT_RATIO * self.rotator_timeout_seconds
        _check_range(
            "visibilityTimeoutSeconds",
            self.visibility_timeout_seconds,
            minimum_visibility,
            SQS_MAX_VISIBILITY_TIMEOUT_SECONDS,
            why=f"at least {VISIBILITY_TO_TIMEOUT_RATIO} x rotatorTimeoutSeconds",
        )

        if self.refresh_window_seconds is not None:
            floor = self.runtime_settings().minimum_refresh_window_seconds
            _check_range(
                "refreshWindowSeconds",
                self.refresh_window_seconds,
                floor,
                None,
                why="below this a key could expire before its retries run out",
            )

    def _check_queues(self) -> None:
        _check_range(
            "maxReceiveCount", self.max_receive_count, MIN_RECEIVE_COUNT, SQS_MAX_RECEIVE_COUNT
        )
        _check_range("maxConcurrency", self.max_concurrency, *EVENT_SOURCE_CONCURRENCY)
        _check_range(
            "batchSize",
            self.batch_size,
            1,
            FIFO_MAX_BATCH_SIZE,
            why="the most a FIFO queue delivers at once",
        )
        _check_range("queueRetentionDays", self.queue_retention_days, 1, SQS_MAX_RETENTION_DAYS - 1)
        _check_range(
            "dlqRetentionDays",
            self.dlq_retention_days,
            self.queue_retention_days + 1,
            SQS_MAX_RETENTION_DAYS,
            why="longer than queueRetentionDays",
        )
        if self.retry_budget_seconds >= self.queue_retention_days * DAY:
            raise ValueError(
                f"queueRetentionDays ({self.queue_retention_days}) must outlast the retries "
                f"(maxReceiveCount, backoffBaseSeconds and visibilityTimeoutSeconds allow "
                f"{self.retry_budget_seconds} s), or messages expire before they reach the "
                f"dead-letter queue"
            )

    def _check_options(self) -> None:
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(
                f"logLevel must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.alarm_email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", self.alarm_email):
            raise ValueError(f"alarmEmail must be an email address, got {self.alarm_email!r}")
        if self.momento_endpoint_override is not None and not self.momento_endpoint_override:
            raise ValueError(
                "momentoEndpointOverride must be host:port (plain text unless the port is 443) "
                "or null"
            )
        for index, arn in enumerate(self.kms_key_arns):
            if not isinstance(arn, str) or not _KMS_KEY_ARN_PATTERN.match(arn):
                raise ValueError(
                    f"kmsKeyArns[{index}] must be a KMS key ARN "
                    f"(arn:aws:kms:<region>:<account>:key/<id>; aliases do not work), got {arn!r}"
                )


def _check_types(config: StackConfig) -> None:
    """Refuse values of the wrong type, such as "60" for a number or true for a count.

    The annotations are strings (postponed evaluation), so the first word names the type.
    """
    for field in fields(config):
        value = getattr(config, field.name)
        annotation = str(field.type)
        if annotation.endswith("| None") and value is None:
            continue
        kind = annotation.split("[")[0].split(" ")[0]
        expected = _KINDS[kind]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ValueError(f"{_camel(field.name)} must be {_describe(annotation)}, got {value!r}")


def _check_range(name: str, value: int, low: int, high: int | None, why: str | None = None) -> None:
    if low <= value and (high is None or value <= high):
        return
    bounds = f"at least {low}" if high is None else f"between {low} and {high}"
    reason = f" ({why})" if why else ""
    raise ValueError(f"{name} must be {bounds}{reason}, got {value}")


def _put_if_set(environment: dict[str, str], name: str, value: str | None) -> None:
    if value is not None:
        environment[name] = value


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _describe(annotation: str) -> str:
    kind = annotation.split("[")[0].split(" ")[0]
    description = {"int": "a whole number", "str": "a string", "tuple": "a list"}[kind]
    return f"{description} or null" if annotation.endswith("| None") else description
