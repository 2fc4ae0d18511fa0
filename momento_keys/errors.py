"""Expected failures of a command, and the exit codes the command line returns.

    0  done; for `status`, nothing needs a person
    1  the command could not do what was asked (bad file, AWS refused, rotation failed, ...)
    2  the command line itself was wrong (argparse's usage error)
    3  `status` only: at least one secret needs a person

Every expected failure reaches the user as one line on standard error that names the secret,
file or queue and the cause. Messages never carry a key, a refresh token or a secret value.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrotation.errors import RotationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ATTENTION = 3

MESSAGE_LIMIT = 240


class CommandFailed(Exception):
    """Raised when a command cannot finish for a reason the user can act on."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def aws_failure(subject: str, error: ClientError | BotoCoreError) -> CommandFailed:
    """One line for an AWS error: the subject, the operation, the error code and AWS's message."""
    return CommandFailed(f"{subject}: {describe_aws_error(error)}")


def unreachable(subject: str, error: RotationError, client: Any) -> CommandFailed:
    """An `AwsUnavailable` from the domain, with the endpoint it could not reach."""
    return CommandFailed(
        f"{subject}: {error.detail} (endpoint {client.meta.endpoint_url}; check "
        "--endpoint-url, --region and the credentials)"
    )


def describe_aws_error(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        operation = error.operation_name or "the call"
        details = error.response.get("Error", {})
        code = str(details.get("Code", "")) or "unknown error"
        message = one_line(str(details.get("Message", "")))
        return f"{operation} failed: {code}" + (f": {message}" if message else "")
    return one_line(str(error)) or type(error).__name__


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def one_line(text: str) -> str:
    """Collapse whitespace (an emulator may answer with a page of HTML) and bound the length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MESSAGE_LIMIT else flat[: MESSAGE_LIMIT - 1] + "…"
