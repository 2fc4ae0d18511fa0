"""How results reach the terminal: aligned tables for people, JSON for scripts, short times.

Nothing here knows about secrets; callers pass only names, states and times. Tables and JSON go
to standard output. With `--json`, the closing summary line goes to standard error, so that
standard output stays one parseable document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from keyrotation.state_tags import utc_stamp

COLUMN_GAP = "  "


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, as wide as their widest cell; the last column is not padded."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return COLUMN_GAP.join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table(headers, rows))


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=False))


def summary(text: str, *, as_json: bool = False) -> None:
    """The one line every command ends with."""
    print(text, file=sys.stderr if as_json else sys.stdout)


def warn(text: str) -> None:
    print(f"momento-keys: warning: {text}", file=sys.stderr)


def progress(text: str) -> None:
    print(text, flush=True)


def count(number: int, noun: str) -> str:
    """`1 message`, `3 messages`: a count with its noun (regular plurals only)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def utc(epoch: float | None) -> str:
    """ISO 8601 in UTC, or "-" when there is no time to show."""
    return "-" if epoch is None else utc_stamp(epoch)


def duration(seconds: float) -> str:
    """A short human span: `12d 4h`, `3d`, `5h 3m`, `42m`, `<1m`. The sign is ignored."""
    total = int(abs(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "<1m"


def time_left(valid_until: int | None, seconds_left: int | None) -> str:
    """What the LEFT column says: a span, `never`, `5d 2h ago`, or `?` when unknown."""
    if valid_until == 0:
        return "never"
    if seconds_left is None:
        return "?"
    if seconds_left <= 0:
        return f"{duration(seconds_left)} ago"
    return duration(seconds_left)


def parse_utc(stamp: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 UTC stamp as the rotator writes it, None if unreadable."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
