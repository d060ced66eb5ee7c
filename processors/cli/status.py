"""`dynafold status`: is everything caught up and healthy? (the same service as `GET /status`)

Each reader's lag (the log head's time against the last event it applied), failures and dead
letters in the window, alarms in ALARM, the active view versions, rebuilds in progress. Locally
it reads the local stack of --state-dir (the one running from it, or on --endpoint-url); with no
local endpoint, the AWS stack the table prefix names (CloudWatch, SSM, Step Functions, the tables).

Exit 0 when healthy, 1 when something needs attention: a reader behind by more than
--lag-threshold, an alarm in ALARM, anything failed or dead-lettered in the window.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from processors.cli.context import EXIT_FAILED, EXIT_OK, AddCommand, Context, argument_type
from projections.health.status import DEFAULT_LAG_THRESHOLD_SECONDS
from projections.unit import parse_duration

duration = argument_type(parse_duration)


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    status = ctx.root().status.status(
        window=args.window, lag_threshold_seconds=args.lag_threshold.total_seconds())
    emit(status.to_dict(), as_json=ctx.as_json, human=status.text())
    return EXIT_OK if status.healthy else EXIT_FAILED


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    status = command("status", cmd_status, "is everything caught up and healthy? (exit 0 healthy, 1 needs attention)")
    status.add_argument("--window", type=duration, default=timedelta(hours=1), metavar="DURATION",
                        help="how far back failures, dead letters and the lag series look, 5m..24h (default 1h)")
    status.add_argument("--lag-threshold", type=duration, default=timedelta(seconds=DEFAULT_LAG_THRESHOLD_SECONDS),
                        metavar="DURATION", help="a reader further behind needs attention (default 60s, as the "
                                                 "iterator-age alarms)")
