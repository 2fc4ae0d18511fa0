"""boto3 clients with the timeouts and retry mode both functions use.

The endpoint comes from boto3's own `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_<SERVICE>`), which
is how the local environment points everything at the emulator.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=15,
    max_pool_connections=32,
)


def client(service: str, session: boto3.session.Session | None = None, **kwargs: Any) -> Any:
    return (session or boto3.session.Session()).client(service, config=CLIENT_CONFIG, **kwargs)
