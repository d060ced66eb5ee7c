"""`dynafold logs [--follow] [--correlation ID] [--function NAME] [--since T] [--on-aws]`: the functions' logs.

As `sam logs --tail`: every function's lines (or one's, `--function`), merged in time order, from
`--since` (default the last 10 minutes), those of one request with `--correlation` (the id as it
appears in the lines: the functions log the events' correlation id), and with `--follow` the new
ones as they come until Ctrl-C (one line, exit 130). Locally from the local stack's log files
(`<state dir>/logs`), with `--on-aws` from the deployed stack's CloudWatch log groups
(`--table-prefix <stack>-` names the stack), through the adapter the composition root is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from events.errors import DynafoldError
from processors.cli.context import EXIT_INTERRUPTED, EXIT_OK, AddCommand, Context, argument_type
from projections import unit

DEFAULT_SINCE = timedelta(minutes=10)  # as `sam logs`


def _since(text: str) -> datetime:
    """A duration back from now (30m, 2h, 1d) or an ISO 8601 time."""
    try:
        return datetime.now(timezone.utc) - unit.parse_duration(text)
    except unit.InvalidQuery:
        pass
    try:
        return datetime.fromisoformat(unit.moment(text))
    except unit.InvalidQuery:
        raise unit.InvalidQuery(f"invalid --since {text!r}: a duration back from now (10m, 2h, 1d) or an ISO 8601 "
                                "time") from None


def _correlation(text: str) -> str:
    # Quoted in CloudWatch's filter pattern: a quote or a control character cannot be searched for.
    if not text.strip() or '"' in text or any(ord(c) < 32 for c in text) or len(text) > 1024:
        raise unit.InvalidQuery(f"invalid --correlation {text[:80]!r}: an id of 1-1024 characters without quotes")
    return text


def _shown(line: Any) -> str:
    return f"{line.to_json()['time']}  {line.function:<16} {line.text}"


def cmd_logs(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    if args.follow and ctx.as_json:
        raise DynafoldError("--follow prints lines as they come and --json one document: give one of them")
    if args.on_aws:
        source = ctx.aws_root().function_logs
    else:  # the files need no engine: the local stack's own adapter over its state directory
        from processors.local.function_logs import local_function_logs

        source = local_function_logs(ctx.state_dir / "logs")
    since = args.since or datetime.now(timezone.utc) - DEFAULT_SINCE
    reader = source.reader(args.function or (), since, args.correlation)
    if not args.follow:
        lines = reader.poll()
        emit([line.to_json() for line in lines], as_json=ctx.as_json,
             human="\n".join(map(_shown, lines)) or f"(no log lines since {since.isoformat(timespec='seconds')})")
        return EXIT_OK
    try:
        while True:
            for line in reader.poll():
                print(_shown(line), flush=True)
            time.sleep(source.poll_seconds)
    except KeyboardInterrupt:
        print("dynafold: stopped following the logs (interrupted)", file=sys.stderr)
        return EXIT_INTERRUPTED


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    p = command("logs", cmd_logs, "the functions' logs in time order, as `sam logs` (--follow: as they come)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    p.add_argument("--correlation", type=argument_type(_correlation), default=None, metavar="ID",
                   help="only lines of this request (its correlation id)")
    p.add_argument("--function", action="append", default=None, metavar="NAME",
                   help="only this function (projector, reactor, ingest, ...); repeatable")
    p.add_argument("--since", type=argument_type(_since), default=None, metavar="T",
                   help="from this time (ISO 8601) or this long ago (10m, 2h, 1d); default 10m")
    p.add_argument("--on-aws", action="store_true",
                   help="the deployed stack's CloudWatch log groups (--table-prefix <stack>-) instead of local files")
