"""Invoke one handler once, as Lambda would, in this process: `python -m localenv.invoke`.

The event is read from a file (or is `{}`), the result is written to `--result` as JSON, and the
handler's own log lines go wherever this process's stdout goes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from localenv.lambda_runtime import LambdaContext, load_handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("handler", help="dotted path, e.g. scanner.handler.lambda_handler")
    parser.add_argument("--event", type=Path, help="a JSON file holding the event")
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)

    event = json.loads(args.event.read_text()) if args.event else {}
    handler = load_handler(args.handler)
    try:
        result = handler(event, LambdaContext("momento-key-scanner", args.timeout))
    except Exception as error:
        args.result.write_text(json.dumps({"error": type(error).__name__, "message": str(error)}))
        print(f"handler error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
