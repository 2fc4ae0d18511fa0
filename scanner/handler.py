"""Scanner entry point: one scan of every opted-in secret per scheduled invocation."""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from keyrotation import aws, scan
from keyrotation.reporting import publish_scan
from keyrotation.settings import Settings

logger = Logger()
metrics = Metrics()


@functools.cache
def _runtime() -> tuple[Settings, Any, Any]:
    return Settings.from_env(), aws.client("secretsmanager"), aws.client("sqs")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings, secrets_client, sqs = _runtime()
    result = scan.run_scan(secrets_client, sqs, settings, time.time())
    return publish_scan(result, metrics, logger)
