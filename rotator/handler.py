"""Rotator entry point: a batch from the rotation queue, or one secret rotated on request."""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from keyrotation import aws, invocation
from keyrotation.momento_auth import MomentoAuth
from keyrotation.processing import RecordProcessor
from keyrotation.rotation import Rotator
from keyrotation.settings import Settings

logger = Logger()
metrics = Metrics()


@functools.cache
def _runtime() -> tuple[Rotator, RecordProcessor]:
    settings = Settings.from_env()
    momento = MomentoAuth(settings.momento_endpoint_override, settings.momento_timeout_seconds)
    rotator = Rotator(aws.client("secretsmanager"), momento, settings)
    sink = functools.partial(invocation.count, metrics)
    return rotator, RecordProcessor(rotator, aws.client("sqs"), settings, sink, time.time)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rotator, processor = _runtime()
    return invocation.dispatch(event, context, rotator, processor)
