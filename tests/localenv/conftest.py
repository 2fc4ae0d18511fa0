"""Servers for the local-environment tests: a Momento stand-in per test, one AWS emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from localenv_support import NO_RETRIES, FakeClock, MomentoClient

from localenv.aws_emulator import AwsEmulator
from localenv.momento_standin import MomentoStandIn


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[MomentoStandIn]:
    """A fresh stand-in per test (it starts in milliseconds), on the test's clock."""
    with MomentoStandIn(clock=clock) as server:
        yield server


@pytest.fixture
def momento(standin: MomentoStandIn) -> Iterator[MomentoClient]:
    client = MomentoClient(standin.address)
    yield client
    client.channel.close()


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[AwsEmulator]:
    with AwsEmulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_process: AwsEmulator) -> AwsEmulator:
    """The shared emulator, emptied (state, faults, counts) before each test."""
    emulator_process.reset()
    return emulator_process


@pytest.fixture
def secretsmanager(emulator: AwsEmulator) -> Any:
    return boto3.client("secretsmanager", config=NO_RETRIES, **emulator.client_kwargs())


@pytest.fixture
def sqs(emulator: AwsEmulator) -> Any:
    return boto3.client("sqs", config=NO_RETRIES, **emulator.client_kwargs())
