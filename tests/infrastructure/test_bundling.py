"""The local bundler: what goes into a function's asset, and when the asset is rebuilt.

pip runs for real here, against an empty requirements file, so no network is needed.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_

from infrastructure import bundling

PYC_UNCHECKED_HASH = 0b01  # bit 0: hash-based; bit 1 clear: never checked against the source


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with the shared package, one function package and no dependencies."""
    (tmp_path / "requirements").mkdir()
    (tmp_path / bundling.REQUIREMENTS_FILE).write_text("# nothing to install\n")
    for package, module in (("keyrotation", "due.py"), ("scanner", "handler.py")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / module).write_text("VALUE = 1\n")
        (tmp_path / package / "__pycache__").mkdir()
        (tmp_path / package / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"old")
    (tmp_path / "scanner" / "tests").mkdir()
    (tmp_path / "scanner" / "tests" / "test_handler.py").write_text("")
    return tmp_path


def bundler_for(project: Path) -> bundling.PipLocalBundling:
    return bundling.PipLocalBundling(project, ("keyrotation", "scanner"), "3.12")


def test_bundling_copies_the_packages_without_caches_or_tests(project, tmp_path):
    output = tmp_path / "out"
    output.mkdir()

    assert bundler_for(project).try_bundle(str(output)) is True

    assert (output / "keyrotation" / "due.py").is_file()
    assert (output / "scanner" / "handler.py").is_file()
    assert not (output / "scanner" / "tests").exists()
    assert not list(output.rglob("*.cpython-311.pyc"))


def test_bundling_byte_compiles_for_the_runtime_without_source_checks(project, tmp_path):
    if bundling.find_interpreter("3.12") is None:
        pytest.skip("no python3.12 on this machine: the bundler skips compiling, with a note")
    output = tmp_path / "out"
    output.mkdir()

    bundler_for(project).try_bundle(str(output))

    compiled = output / "scanner" / "__pycache__" / "handler.cpython-312.pyc"
    (flags,) = struct.unpack("<I", compiled.read_bytes()[4:8])
    assert flags == PYC_UNCHECKED_HASH


def test_bundling_refuses_a_missing_function_package(project, tmp_path):
    bundler = bundling.PipLocalBundling(project, ("keyrotation", "rotator"), "3.12")

    with pytest.raises(FileNotFoundError, match=r"cannot bundle rotator/"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_bundling_fingerprint_changes_with_the_code_and_not_with_caches(project):
    before = bundler_for(project).fingerprint()

    (project / "scanner" / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"new")
    (project / "scanner" / "tests" / "test_more.py").write_text("")
    unchanged = bundler_for(project).fingerprint()
    (project / "keyrotation" / "due.py").write_text("VALUE = 2\n")
    changed = bundler_for(project).fingerprint()

    assert unchanged == before
    assert changed != before


def test_bundling_fingerprint_changes_with_the_pinned_requirements(project):
    before = bundler_for(project).fingerprint()

    (project / bundling.REQUIREMENTS_FILE).write_text("pyjwt==2.15.1\n")

    assert bundler_for(project).fingerprint() != before


def test_bundling_targets_the_runtimes_python_version():
    assert bundling.python_version(lambda_.Runtime.PYTHON_3_13) == "3.13"
    with pytest.raises(ValueError, match="not a Python runtime"):
        bundling.python_version(lambda_.Runtime.NODEJS_22_X)
