"""The operator command line against the local AWS emulator and the Momento stand-in.

Every test talks real HTTP to moto's server (with the project's corrections) and real gRPC to
the stand-in, both on 127.0.0.1. The command line runs in-process through `main([...])`; one
test runs the installed console script. After each test, everything the command line printed
is checked for key material: no key, inner JWT or refresh token the stand-in ever issued may
appear in it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_support import DAY, Cli, Fleet, Queues

from localenv.aws_emulator import AwsEmulator
from localenv.momento_standin import MomentoStandIn
from momento_keys import dead_letters

ENV_TO_CLEAR = (
    "TAG_KEY",
    "ROTATION_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
    "MOMENTO_ENDPOINT_OVERRIDE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)


@pytest.fixture(scope="session")
def emulator() -> Iterator[AwsEmulator]:
    with AwsEmulator(stderr=subprocess.DEVNULL) as server:
        yield server


@pytest.fixture(scope="session")
def standin() -> Iterator[MomentoStandIn]:
    with MomentoStandIn() as server:
        yield server


@pytest.fixture
def aws(emulator: AwsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AwsEmulator:
    """An emptied emulator that boto3 reaches through `AWS_ENDPOINT_URL`, as an operator's would."""
    emulator.reset()
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    for name, value in emulator.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # NOTE: moto answers a short poll with every visible message; AWS may need the long poll.
    monkeypatch.setattr(dead_letters, "RECEIVE_WAIT_SECONDS", 0)
    return emulator


@pytest.fixture
def sm(aws: AwsEmulator) -> Any:
    return boto3.client("secretsmanager", **aws.client_kwargs())


@pytest.fixture
def sqs(aws: AwsEmulator) -> Any:
    return boto3.client("sqs", **aws.client_kwargs())


@pytest.fixture
def queues(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> Queues:
    """A FIFO rotation queue redriving to a FIFO DLQ after 5 receives, named in the env."""
    dlq_url = sqs.create_queue(
        QueueName="momento-rotation-dlq.fifo",
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(14 * DAY)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": 5,
    }
    rotation_url = sqs.create_queue(
        QueueName="momento-rotation.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    monkeypatch.setenv("ROTATION_QUEUE_URL", rotation_url)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
    return Queues(rotation_url, dlq_url)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], standin: MomentoStandIn) -> Iterator[Cli]:
    runner = Cli(capsys)
    yield runner
    secret_strings = standin.all_secret_strings()
    leaked = [text for text in runner.printed if any(s in text for s in secret_strings)]
    assert not leaked, "the command line printed key material"


@pytest.fixture
def fleet(sm: Any, sqs: Any, standin: MomentoStandIn, tmp_path: Path) -> Fleet:
    return Fleet(sm, sqs, standin, tmp_path)
