"""The real handlers against moto's server and the Momento stand-in, over the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localenv.aws_emulator import AwsEmulator
from localenv.loop import LocalLoop
from localenv.momento_standin import MomentoStandIn


@pytest.fixture(scope="module")
def emulator() -> Iterator[AwsEmulator]:
    with AwsEmulator() as server:
        yield server


@pytest.fixture
def standin() -> Iterator[MomentoStandIn]:
    with MomentoStandIn() as server:
        yield server


@pytest.fixture
def loop(emulator: AwsEmulator, standin: MomentoStandIn, tmp_path: Path) -> Iterator[LocalLoop]:
    """A provisioned loop on an emptied emulator; its rotators are stopped afterwards."""
    emulator.reset()
    local = LocalLoop(emulator, standin, tmp_path)
    local.provision()
    yield local
    local.stop_rotators()
