"""Builds each function's code asset on this machine, without Docker.

An asset holds the shared `keyrotation` package, the function's own package and the runtime
dependencies pinned in requirements/lambda.txt, installed as wheels for Linux on ARM. boto3 is
left out: the Lambda runtime provides it.

The bundle is byte-compiled with an interpreter of the runtime's minor version, in
`unchecked-hash` mode. The CDK zips files with a fixed 1980 timestamp, so ordinary `.pyc` files
would look stale and every cold start would recompile the dependencies; unchecked-hash files are
used as they are (this took the imports of a cold start from about 840 ms to 265 ms).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from glob import glob
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILE = "requirements/lambda.txt"
SHARED_PACKAGE = "keyrotation"
PIP_PLATFORM = "manylinux2014_aarch64"
# Provided by the Lambda runtime; a bundled copy would only shadow it.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Left out of the bundle and of its fingerprint.
IGNORED_NAMES = ("__pycache__", "*.pyc", "*.pyo", "tests", ".pytest_cache", ".mypy_cache")
# Bump when the recipe below changes, so existing assets are rebuilt.
RECIPE_VERSION = "1"
# Set to a python3.X executable to choose the interpreter that byte-compiles the bundle.
INTERPRETER_VARIABLE = "BUNDLING_PYTHON"


def function_code(
    package: str, runtime: lambda_.Runtime, root: Path = PROJECT_ROOT
) -> lambda_.Code:
    """The code asset of the function whose handler lives in the `package` folder.

    The asset hash is a fingerprint of exactly what goes in, so an unchanged bundle is reused
    and the CDK never walks the whole repository (virtual environments included).
    """
    version = python_version(runtime)
    packages = (SHARED_PACKAGE, package)
    bundler = PipLocalBundling(root, packages, version)
    return lambda_.Code.from_asset(
        str(root),
        asset_hash=bundler.fingerprint(),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{version}"),
            command=["bash", "-c", _container_command(packages)],
            # NOTE: jsii hands the options over as one positional argument, not as the keywords
            # the typed protocol declares; the cast only tells mypy so.
            local=cast(ILocalBundling, bundler),
        ),
    )


def python_version(runtime: lambda_.Runtime) -> str:
    """The minor version of a Python runtime: "3.13" for python3.13."""
    name = runtime.name
    if not name.startswith("python"):
        raise ValueError(f"not a Python runtime: {name}")
    return name.removeprefix("python")


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs the wheels with pip's cross-platform options and copies the packages in."""

    def __init__(self, root: Path, packages: Sequence[str], python_version: str) -> None:
        self.root = root
        self.packages = tuple(packages)
        self.python_version = python_version

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        """Build the asset into `output_dir`. Called by the CDK; True means "done, skip Docker"."""
        output = Path(output_dir)
        sources = [self._package_source(package) for package in self.packages]
        self._install_requirements(output)
        _remove_runtime_provided(output)
        for source in sources:
            shutil.copytree(
                source, output / source.name, ignore=shutil.ignore_patterns(*IGNORED_NAMES)
            )
        self._compile(output)
        return True

    def fingerprint(self) -> str:
        """A hash of every file that goes into the bundle, and of how it is built."""
        digest = hashlib.sha256()
        for part in (RECIPE_VERSION, self.python_version, PIP_PLATFORM, *self.packages):
            digest.update(part.encode() + b"\0")
        for path in self._source_files():
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        return digest.hexdigest()

    def _install_requirements(self, output: Path) -> None:
        command = [
            sys.executable, "-m", "pip", "install",
            "--quiet", "--disable-pip-version-check", "--no-compile",
            "--platform", PIP_PLATFORM,
            "--implementation", "cp",
            "--python-version", self.python_version,
            "--only-binary=:all:",
            "--target", str(output),
            "--requirement", str(self.root / REQUIREMENTS_FILE),
        ]  # fmt: skip
        subprocess.run(command, check=True)  # noqa: S603 - fixed arguments, no shell

    def _package_source(self, package: str) -> Path:
        source = self.root / package
        if not (source / "__init__.py").is_file():
            raise FileNotFoundError(f"cannot bundle {package}/: {source} is not a Python package")
        return source

    def _compile(self, output: Path) -> None:
        interpreter = find_interpreter(self.python_version)
        if interpreter is None:
            print(
                f"note: no python{self.python_version} found (set {INTERPRETER_VARIABLE}); the "
                f"bundle is not byte-compiled and cold starts will be slower",
                file=sys.stderr,
            )
            return
        command = [interpreter, "-m", "compileall", "-q", "-j", "0",
                   "--invalidation-mode", "unchecked-hash", str(output)]  # fmt: skip
        result = subprocess.run(command, check=False)  # noqa: S603 - fixed arguments, no shell
        if result.returncode != 0:
            print("note: some bundled files did not byte-compile; they compile at cold start",
                  file=sys.stderr)  # fmt: skip

    def _source_files(self) -> Iterator[Path]:
        yield self.root / REQUIREMENTS_FILE
        for package in self.packages:
            folder = self.root / package
            if not folder.is_dir():
                continue  # bundling reports the missing package; a fingerprint need not.
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not _ignored(path.relative_to(folder)):
                    yield path


def find_interpreter(version: str) -> str | None:
    """An executable that runs Python `version` (such as "3.13"), or None.

    Tries $BUNDLING_PYTHON, then `python3.X` on the PATH, then pyenv's installed versions (a
    pyenv shim on the PATH fails unless that version is selected, so it is checked, not trusted).
    """
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        os.environ.get(INTERPRETER_VARIABLE),
        shutil.which(f"python{version}"),
        *sorted(glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True),
    ]
    for candidate in candidates:
        if candidate and _runs_version(candidate, version):
            return candidate
    return None


def _runs_version(executable: str, version: str) -> bool:
    probe = [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    try:
        result = subprocess.run(  # noqa: S603 - the interpreter found on this machine
            probe, capture_output=True, text=True, check=False, timeout=30
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def _remove_runtime_provided(output: Path) -> None:
    for name in RUNTIME_PROVIDED:
        for path in [output / name, *output.glob(f"{name}-*.dist-info")]:
            if path.exists():
                print(f"note: leaving {path.name} out of the bundle (the runtime provides it)",
                      file=sys.stderr)  # fmt: skip
                shutil.rmtree(path)


def _ignored(relative: Path) -> bool:
    return any(fnmatch(part, pattern) for part in relative.parts for pattern in IGNORED_NAMES)


def _container_command(packages: Sequence[str]) -> str:
    """The same recipe for the Docker fallback, run in the SAM build image."""
    sources = " ".join(f"/asset-input/{package}" for package in packages)
    copies = " ".join(f"/asset-output/{package}" for package in packages)
    runtime_provided = " ".join(f"/asset-output/{name}" for name in RUNTIME_PROVIDED)
    return (
        f"pip install --no-compile -r /asset-input/{REQUIREMENTS_FILE} -t /asset-output"
        f" && rm -rf {runtime_provided}"
        f" && cp -r {sources} /asset-output"
        f" && find {copies} \\( -name __pycache__ -o -name tests \\) -prune -exec rm -rf {{}} +"
        " && python -m compileall -q --invalidation-mode unchecked-hash /asset-output"
    )
