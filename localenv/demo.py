"""`make demo`: the whole loop on this machine, with a fleet, a table, and a verdict.

Starts moto's server and the Momento stand-in on free 127.0.0.1 ports, provisions the stack's
queues, seeds the fleet, starts the rotator's execution environments, runs the scanner, waits
for the queue to drain, and prints what became of every secret and what is in the DLQ. Exits 1
if a refreshable key was not rotated, a secret that must not be touched changed, a broken one
lacks its DLQ entry, or any log line holds a key, refresh token or secret value.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from localenv.aws_emulator import AwsEmulator
from localenv.fleet import FleetSecret, Snapshot, build_fleet, check, seed, snapshot
from localenv.loop import LocalLoop
from localenv.momento_standin import MomentoStandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    parser.add_argument("--scale", type=int, default=1, help="multiply the healthy fleet")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the emulator and stand-in running afterwards, for momento-keys (Ctrl-C stops)",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="momento-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    with AwsEmulator() as emulator, MomentoStandIn() as standin:
        print(f"AWS emulator   {emulator.endpoint_url}")
        print(f"Momento stand-in 127.0.0.1:{standin.port}")
        loop = LocalLoop(emulator, standin, workdir)
        queues = loop.provision()
        print(f"rotation queue {queues.rotation_url}\n")

        secrets_client = loop.client("secretsmanager")
        fleet = build_fleet(standin, time.time(), loop.config.tag_key, args.scale)
        seed(secrets_client, fleet)
        before = {s.name: snapshot(secrets_client, s.name) for s in fleet}

        loop.start_rotators()
        try:
            summary = loop.run_scanner()
            drained = loop.wait_until_drained(timeout=300)
        finally:
            loop.stop_rotators()

        after = {s.name: snapshot(secrets_client, s.name) for s in fleet}
        emulator.clear_call_counts()
        rescan = loop.run_scanner()
        reads = emulator.call_counts().get("secretsmanager.GetSecretValue", 0)
        if rescan.get("enqueued") != 0 or reads:
            problems_rescan = [
                f"the second scan enqueued {rescan.get('enqueued')} and read {reads} values"
            ]
        else:
            problems_rescan = []
        letters = loop.dead_letters()
        by_secret = {_name(d.secret): d.reason for d in letters}
        problems = check(fleet, before, after, by_secret, standin.is_accepted) + problems_rescan
        if not drained:
            problems.append("the rotation queue did not drain within 300 s")
        leaks = [s for s in standin.all_secret_strings() if s and s in loop.log_text()]
        if leaks:
            problems.append(f"{len(leaks)} secret strings appeared in the function logs")

        _print_table(fleet, before, after, by_secret)
        print(f"\nfirst scan:  {_summary(summary)}")
        print("             (no expiry records yet: every secret goes to the rotator to inspect)")
        print(f"second scan: {_summary(rescan)}")
        print("             (from the rotator's tags alone: no value read, nothing to do)")
        print(f"refreshes granted by Momento: {len(standin.grants)}")
        print("\ndead-letter queue:")
        for letter in sorted(letters, key=lambda d: d.secret):
            print(f"  {_name(letter.secret):<34} {letter.reason:<20} {letter.detail}")
        print(f"\nlogs: {workdir / 'logs'}   ({time.monotonic() - started:.1f} s)")

        rotated = sum(1 for s in fleet if s.expect == "rotated")
        if problems:
            print("\nFAILED:", *problems, sep="\n  ")
        else:
            print(f"\nOK: {rotated} keys rotated, every other secret as expected.")
        if args.serve:
            _serve(loop, workdir)
    return 1 if problems else 0


def _summary(counts: dict[str, int]) -> str:
    """A scan's counts, each secret counted once; overdue ones are a subset, said apart."""
    verdicts = ("due", "to_inspect", "ok", "failing", "expired", "not_refreshable")
    parts = [f"{name.replace('_', ' ')} {counts[name]}" for name in verdicts if counts.get(name)]
    text = f"{counts.get('scanned', 0)} secrets: " + ", ".join(parts or ["none"])
    if counts.get("overdue"):
        text += f" (of which overdue: {counts['overdue']})"
    return text + f"; enqueued {counts.get('enqueued', 0)}"


def _serve(loop: LocalLoop, workdir: Path) -> None:
    """Keep the environment up, rotators consuming, and say how to point momento-keys at it."""
    queues = loop.queues_or_fail()
    key_file = workdir / "momento_token.info.json"
    key_file.write_text(json.dumps(loop.standin.mint_key(30 * 86_400).as_token_file()))
    key_file.chmod(0o600)
    exports = {
        **loop.emulator.environ(),
        "ROTATION_QUEUE_URL": queues.rotation_url,
        "DEAD_LETTER_QUEUE_URL": queues.dead_letter_url,
        "MOMENTO_ENDPOINT_OVERRIDE": loop.standin.address,
        "PATH": f"{Path.cwd() / '.venv' / 'bin'}:$PATH",
    }
    signal.signal(signal.SIGTERM, _interrupt)
    loop.start_rotators()
    try:
        print(
            "\nThe local environment stays up, its rotators consuming the queue. In another shell:"
        )
        print("\n  export " + " ".join(f"{k}={v}" for k, v in sorted(exports.items())))
        print("  momento-keys status")
        print("  momento-keys dlq list")
        print(f"  momento-keys import {key_file} --name demo/imported")
        print("  momento-keys rotate demo/imported")
        print(f"\n{key_file} holds a key the local Momento stand-in issued (30 days).")
        print("Ctrl-C stops it all.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        loop.stop_rotators()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_table(
    fleet: list[FleetSecret],
    before: dict[str, Snapshot],
    after: dict[str, Snapshot],
    letters: dict[str, str],
) -> None:
    print(f"{'secret':<34} {'expected':<32} {'valid until: before':<21} {'after':<20} outcome")
    for secret in fleet:
        old, new = before[secret.name], after[secret.name]
        outcome = "rotated" if new.version_id != old.version_id else "unchanged"
        if secret.name in letters:
            outcome = f"DLQ {letters[secret.name]}"
        print(
            f"{secret.name:<34} {secret.expect:<32} {_until(old):<21} {_until(new):<20} {outcome}"
        )


def _until(state: Snapshot) -> str:
    try:
        raw = json.loads(state.value or "")["validUntil"]
        value = int(float(raw))
    except (ValueError, KeyError, TypeError):
        return "-"
    if value == 0:
        return "never"
    if value > 10**11:
        return "(milliseconds)"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")


def _name(secret_arn: str) -> str:
    """demo/x/y from an ARN (Secrets Manager appends -XXXXXX to the name)."""
    if not secret_arn.startswith("arn:"):
        return secret_arn
    return secret_arn.split(":secret:", 1)[1].rsplit("-", 1)[0]


if __name__ == "__main__":
    sys.exit(main())
