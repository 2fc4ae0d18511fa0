"""One AWS emulator and one Momento stand-in for the whole fault suite; a fresh world per test.

Both servers listen on 127.0.0.1 only. The emulator is emptied before each test (state, faults
and call counts); the stand-in keeps its ledger, so each test reads it from its own start, and
its faults and delays are cleared before and after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from faults_support import World

import keyrotation.rotation
import rotator.handler
from localenv.aws_emulator import AwsEmulator
from localenv.momento_standin import MomentoStandIn


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[AwsEmulator]:
    with AwsEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def standin_server() -> Iterator[MomentoStandIn]:
    with MomentoStandIn(max_workers=32) as standin:
        yield standin


@pytest.fixture
def emulator(emulator_server: AwsEmulator) -> AwsEmulator:
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def standin(standin_server: MomentoStandIn) -> Iterator[MomentoStandIn]:
    standin_server.clear_faults()
    yield standin_server
    standin_server.clear_faults()


@pytest.fixture
def world(emulator: AwsEmulator, standin: MomentoStandIn) -> Iterator[World]:
    """The emptied emulator with fresh queues, and the stand-in's ledger from now on."""
    created = World(emulator, standin)
    yield created
    created.close()


@pytest.fixture
def real_handler(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Callable[[dict[str, Any], Any], Any]]]:
    """`rotator.handler.lambda_handler` configured by environment, as Lambda starts it.

    Call it with environment overrides; it sets the function's environment and clears the
    handler's cached runtime, so the next invocation is a cold start with these settings.
    Everything the handler prints (its EMF metric lines) is kept in `world.stdout()`.
    """
    printed: list[str] = []

    def stdout() -> str:
        printed.append(capsys.readouterr().out)
        return "".join(printed)

    world.stdout = stdout

    def configure(**overrides: str) -> Callable[[dict[str, Any], Any], Any]:
        env = world.function_env(**overrides)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # A warm environment is reused only while its configuration is the same, as on Lambda.
        if env != _warm.get("env") or rotator.handler._runtime() is not _warm.get("runtime"):
            rotator.handler._runtime.cache_clear()
            _warm.update(env=env, runtime=rotator.handler._runtime())
        return rotator.handler.lambda_handler

    yield configure


_warm: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def cold_handler_after_module() -> Iterator[None]:
    """Leave no warm rotator runtime, aimed at this suite's servers, to other test modules."""
    yield
    rotator.handler._runtime.cache_clear()
    _warm.clear()


@pytest.fixture
def quick_sibling_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Space the rotator's looks for a concurrent sibling 0.1 s apart instead of 1 s.

    For scenarios with no sibling at all, where a refused refresh is final: the rotator still
    looks as many times, it only waits less between looks.
    """
    monkeypatch.setattr(keyrotation.rotation, "SIBLING_PAUSE_SECONDS", 0.1)
