"""Parsing and dispatch for `momento-keys`, and the one place failures become exit codes.

Global options work before or after the subcommand. Precedence: option, then environment,
then default (see `deployment`). Exit codes are listed in `momento_keys.errors`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from keyrotation.errors import RotationError
from keyrotation.settings import Settings, SettingsError
from momento_keys import dead_letters, fleet_status, importing, replaying, rotating, scanning
from momento_keys.deployment import DEFAULT_STACK_NAME, Deployment, connect
from momento_keys.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandFailed,
    describe_aws_error,
)

PROG = "momento-keys"
Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    _show_domain_warnings()
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = handler(args)
        sys.stdout.flush()  # inside the try: a reader that left is noticed here
        return code
    except BrokenPipeError:
        # The reader went away (`momento-keys status | head`): that is not a failure of ours.
        # Point stdout at /dev/null so the interpreter's own flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except CommandFailed as failure:
        return _fail(str(failure), failure.exit_code)
    except RotationError as error:
        return _fail(f"{error} ({error.reason})")
    except SettingsError as error:
        return _fail(f"settings: {error}")
    except NoCredentialsError:
        return _fail(f"{args.command}: no AWS credentials found: pass --profile or set AWS_PROFILE")
    except (ClientError, BotoCoreError) as error:
        return _fail(f"{args.command}: {describe_aws_error(error)}")
    except OSError as error:
        return _fail(f"{error.filename or args.command}: {error.strerror or error}")
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _show_domain_warnings() -> None:
    """Print the rotator's warnings (ids and steps, never keys) as `momento-keys: warning: ...`.

    Left alone when logging is already set up, as under pytest or in an embedding program.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)  # library loggers may pass INFO records up to the root
    handler.setFormatter(_LowercaseLevelFormatter(f"{PROG}: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


class _LowercaseLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
        copy.levelname = record.levelname.lower()
        return super().format(copy)


def _fail(message: str, exit_code: int = EXIT_FAILED) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return exit_code


# -- the commands --------------------------------------------------------------------------


def _import(args: argparse.Namespace) -> int:
    return importing.run(
        _deployment(args), Path(args.file), args.name, args.description, args.kms_key_id
    )


def _status(args: argparse.Namespace) -> int:
    return fleet_status.run(_deployment(args), read_values=args.read_values, as_json=args.json)


def _scan(args: argparse.Namespace) -> int:
    return scanning.run(_deployment(args), dry_run=args.dry_run, as_json=args.json)


def _rotate(args: argparse.Namespace) -> int:
    return rotating.run(_deployment(args), args.name)


def _dlq_list(args: argparse.Namespace) -> int:
    return dead_letters.run_list(_deployment(args), as_json=args.json)


def _dlq_replay(args: argparse.Namespace) -> int:
    return replaying.run(
        _deployment(args), secret=args.secret, limit=args.max, dry_run=args.dry_run
    )


def _deployment(args: argparse.Namespace) -> Deployment:
    overrides: dict[str, Any] = {
        "tag_key": args.tag_key,
        "rotation_queue_url": args.queue_url,
        "dead_letter_queue_url": args.dlq_url,
        "momento_endpoint_override": args.momento_endpoint,
    }
    settings = Settings.from_env(os.environ).with_overrides(
        **{name: value for name, value in overrides.items() if value}
    )
    return connect(
        profile=args.profile,
        region=args.region,
        endpoint_url=args.endpoint_url,
        stack_name=args.stack_name,
        settings=settings,
    )


# -- the parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep Momento API keys stored in AWS Secrets Manager from expiring.",
        epilog=_examples(
            f"{PROG} import momento_token.info.json --name momento/authentication-token",
            f"{PROG} status",
            f"{PROG} dlq list",
            f"{PROG} dlq replay --secret momento/authentication-token",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, with_defaults=True)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    imported = _command(
        commands,
        "import",
        "Store a downloaded momento_token.info.json as an opted-in secret.",
        f"{PROG} import ~/Downloads/momento_token.info.json --name momento/authentication-token",
        f"{PROG} import key.json --name prod/momento --description 'cache key' "
        "--kms-key-id alias/secrets",
        note="The file is checked first (readable JSON, seconds not milliseconds, not "
        "expired); nothing is written if it fails.\nAn existing secret gets a new version "
        "(and the opt-in tag if it lacks it).",
    )
    imported.add_argument("file", metavar="FILE", help="the momento_token.info.json to import")
    imported.add_argument("--name", required=True, help="the secret's name")
    imported.add_argument("--description", help="the secret's description")
    imported.add_argument("--kms-key-id", help="KMS key for the secret (id, ARN or alias)")
    imported.set_defaults(handler=_import)

    status = _command(
        commands,
        "status",
        "Show every opted-in secret's key, expiry and state; exit 3 if any needs a person.",
        f"{PROG} status",
        f"{PROG} status --json | jq '.secrets[] | select(.needsPerson)'",
        f"{PROG} status --no-read-values",
        note="States: ok, due, overdue, expired, not-refreshable, failing, unknown (a '!' "
        "marks those that need a person).\nA value is read only for a secret whose expiry "
        "tag does not name its current version.",
    )
    _add_json(status)
    status.add_argument(
        "--read-values",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read the value of secrets with no expiry record for their current version "
        "(default: on)",
    )
    status.set_defaults(handler=_status)

    scan = _command(
        commands,
        "scan",
        "Show what the scanner would enqueue now and why, or run a scan.",
        f"{PROG} scan --dry-run",
        f"{PROG} scan --dry-run --json",
        f"{PROG} scan --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/rotation.fifo",
    )
    scan.add_argument("--dry-run", action="store_true", help="decide only; enqueue nothing")
    _add_json(scan)
    scan.set_defaults(handler=_scan)

    rotate = _command(
        commands,
        "rotate",
        "Rotate one secret now, even if it is not due, through the rotator's own code.",
        f"{PROG} rotate momento/authentication-token",
        f"{PROG} rotate arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/momento-AbCdEf",
    )
    rotate.add_argument("name", metavar="NAME", help="the secret's name or ARN")
    rotate.set_defaults(handler=_rotate)

    dlq = _command(
        commands,
        "dlq",
        "Inspect and replay the dead-letter queue.",
        f"{PROG} dlq list",
        f"{PROG} dlq replay --dry-run",
    )
    dlq_commands = dlq.add_subparsers(title="commands", dest="dlq_command", metavar="COMMAND")
    dlq.set_defaults(handler=lambda args: _usage(dlq))

    listing = _command(
        dlq_commands,
        "list",
        "List dead-lettered rotations (secret, reason, attempts, age) without consuming them.",
        f"{PROG} dlq list",
        f"{PROG} dlq list --json",
        note="The DLQ is FIFO with one message group per secret: SQS shows only the oldest "
        "message of each secret\nat a time. Messages are made visible again right after "
        "they are read.",
    )
    _add_json(listing)
    listing.set_defaults(handler=_dlq_list)

    replay = _command(
        dlq_commands,
        "replay",
        "Move dead-lettered rotations back to the rotation queue (fix the cause first).",
        f"{PROG} dlq replay --dry-run",
        f"{PROG} dlq replay --secret momento/authentication-token",
        f"{PROG} dlq replay --max 10",
        f"{PROG} dlq replay",
        note="Without filters it starts an SQS message move task; with --secret or --max, or "
        "where move tasks\nare unavailable, it moves messages one by one (sent before "
        "deleted: a crash leaves a duplicate,\nnever a loss). Replayed messages carry "
        'reason "replay".',
    )
    replay.add_argument("--secret", metavar="NAME", help="move only this secret's messages")
    replay.add_argument("--max", type=_positive, metavar="N", help="move at most N messages")
    replay.add_argument("--dry-run", action="store_true", help="show what would move")
    replay.set_defaults(handler=_dlq_replay)
    return parser


def _command(
    commands: Any, name: str, summary: str, *examples: str, note: str | None = None
) -> argparse.ArgumentParser:
    epilog = _examples(*examples) + (f"\n\n{note}" if note else "")
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, with_defaults=False)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, with_defaults: bool) -> None:
    """The same options on the main parser and on every subcommand.

    Only the main parser sets defaults; a subcommand's copy is SUPPRESSed unless given, so
    `momento-keys --region x status` and `momento-keys status --region x` both work.
    """

    def default(value: Any) -> Any:
        return value if with_defaults else argparse.SUPPRESS

    group = parser.add_argument_group("AWS and deployment options")
    group.add_argument("--profile", default=default(None), help="AWS profile to use")
    group.add_argument("--region", default=default(None), help="AWS region")
    group.add_argument(
        "--endpoint-url",
        default=default(None),
        help="AWS endpoint for every service (else AWS_ENDPOINT_URL applies)",
    )
    group.add_argument(
        "--tag-key", default=default(None), help="opt-in tag key (env TAG_KEY, else momento-token)"
    )
    group.add_argument(
        "--queue-url", default=default(None), help="rotation queue URL (env ROTATION_QUEUE_URL)"
    )
    group.add_argument(
        "--dlq-url", default=default(None), help="dead-letter queue URL (env DEAD_LETTER_QUEUE_URL)"
    )
    group.add_argument(
        "--momento-endpoint",
        default=default(None),
        help="Momento control endpoint host:port override (env MOMENTO_ENDPOINT_OVERRIDE)",
    )
    group.add_argument(
        "--stack-name",
        default=default(DEFAULT_STACK_NAME),
        help=f"stack whose outputs give the queue URLs when not set (default {DEFAULT_STACK_NAME})",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON (the summary line goes to stderr)"
    )


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
