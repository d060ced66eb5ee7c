"""`dynafold alerts read|list`: mark alerts read from the command line, the same service as
`POST /alerts/{id}/read` and `POST /alerts/read` (processors/services/alert_reads.py).

`alerts read ID...` marks those alerts (every id must exist, else nothing is marked: exit 4);
`alerts read --type T --sku S --severity X --before TIME` marks every unread alert matching all the
given filters. Only unread alerts get an `alert read` event, so running it again changes nothing;
--dry-run says what it would mark. `alerts list` is `query alerts`.
"""

from __future__ import annotations

import argparse
import getpass
import uuid
from typing import Any

from events.errors import DynafoldError
from processors.cli.context import EXIT_OK, AddCommand, Context, Parser, argument_type, moment
from projections.alerts.fold import SEVERITIES
from projections.alerts.queries import check_alert_type
from projections.unit import choice

SOURCE = "urn:dynafold:cli"


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without one)
        return None


def cmd_alerts_read(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.services.alert_reads import AlertFilter

    filtered = any(value is not None for value in (args.alert_type, args.sku, args.severity, args.before))
    if args.alert_ids and filtered:
        raise DynafoldError("give alert ids or filters (--type, --sku, --severity, --before), not both")
    if not args.alert_ids and not filtered:
        raise DynafoldError("give alert ids, or filters: --type, --sku, --severity, --before (--before now: all)")
    reads = ctx.root().alert_reads
    # One correlation id for the whole command: `audit trace` shows everything it marked.
    options = {"read_by": args.read_by or _operator(), "source": SOURCE, "correlation_id": str(uuid.uuid4()),
               "dry_run": args.dry_run}
    if args.alert_ids:
        outcome = reads.mark(args.alert_ids, **options)
    else:
        outcome = reads.mark_matching(AlertFilter.of(args.alert_type, args.sku, args.severity, args.before), **options)
    emit(outcome.to_dict(), as_json=ctx.as_json, human=outcome.text())
    return EXIT_OK


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    from processors.cli.query import add_question
    from projections.registry import UNITS

    alerts = sub.add_parser("alerts", help="alerts: list them, mark them read", parents=[common])
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, parser_class=Parser)
    read = command("read", cmd_alerts_read, "mark alerts read, by id or every unread one matching filters",
                   alerts_sub)
    read.add_argument("alert_ids", nargs="*", metavar="ID", help="alert ids (from `dynafold alerts list`)")
    read.add_argument("--type", dest="alert_type", type=argument_type(check_alert_type), default=None,
                      help="only alerts of this type (stock_low, sync_drift, ...)")
    read.add_argument("--sku", default=None, help="only this SKU's alerts")
    read.add_argument("--severity", type=argument_type(choice(SEVERITIES, "severity", str.lower)), default=None,
                      help=" | ".join(SEVERITIES))
    read.add_argument("--before", type=moment, default=None, metavar="TIME",
                      help="only alerts raised before TIME (ISO 8601 or `now`)")
    read.add_argument("--by", dest="read_by", default=None, help="who read them (default: your user name)")
    read.add_argument("--dry-run", action="store_true", help="say what would be marked; append nothing")
    [(unit, question)] = [(unit, q) for unit in UNITS for q in unit.commands if q.name == "alerts"]
    add_question(command, unit, question, alerts_sub, name="list")
