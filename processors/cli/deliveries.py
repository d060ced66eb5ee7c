"""`dynafold deliveries redrive ID|--dead-letters [--since T] [--dry-run]`: webhook deliveries tried again.

A dead-lettered delivery gets a fresh retry budget; one waiting for a scheduled retry runs it now.
Nothing is edited: ``redrive requested`` is appended (once, however often the command is retried)
and the stack's reactor enqueues the attempt, as on AWS (``processors/services/redrive.py``). A
delivered message is refused, and so is a target disabled after 410 Gone, with how to enable it.
`POST /messages/{message_id}/redrive` and `POST /dead-letters/redrive` do the same over HTTP.
"""

from __future__ import annotations

import argparse
from typing import Any

from events.errors import DynafoldError
from processors.cli.context import EXIT_FAILED, AddCommand, Context, moment

SOURCE = "urn:dynafold:cli"


def _line(done: Any, dry_run: bool) -> str:
    plan = done.plan
    if plan.outcome == "refused":
        return f"{plan.delivery_id}: not redriven: {plan.reason}"
    if plan.outcome == "already":
        return f"{plan.delivery_id}: {plan.reason}; nothing to do"
    if dry_run:
        return f"{plan.delivery_id}: would redrive: {plan.reason}"
    again = " (this redrive was already recorded: the original answer)" if done.deduplicated else ""
    return (f"{plan.delivery_id}: redriven ({plan.outcome}, v{done.version}){again}: {plan.reason}; the stack's "
            "reactor enqueues the attempt")


def cmd_redrive(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    if (args.delivery is None) == (not args.dead_letters):
        raise DynafoldError("give one delivery (MESSAGE_ID or <sender>:<message>) or --dead-letters")
    if args.since is not None and not args.dead_letters:
        raise DynafoldError("--since goes with --dead-letters")
    redrive = ctx.root().support.redrive
    options = {"dry_run": args.dry_run, "requested_by": args.by, "reason": args.reason, "source": SOURCE}
    if args.delivery is not None:
        done = redrive.redrive(args.delivery, sender_id=args.sender, **options)
        emit(done.to_dict(), as_json=ctx.as_json, human=_line(done, args.dry_run))
        return 0
    found = redrive.redrive_dead_letters(args.since, **options)
    refused = [d for d in found if d.plan.outcome == "refused"]
    verb = "would redrive" if args.dry_run else "redriven"
    summary = (f"{len(found)} dead-lettered deliver{'y' if len(found) == 1 else 'ies'}"
               + (f" since {args.since}" if args.since else "")
               + f": {sum(1 for d in found if d.plan.event is not None)} {verb}, {len(refused)} refused")
    emit({"dry_run": args.dry_run, "deliveries": [d.to_dict() for d in found]}, as_json=ctx.as_json,
         human="\n".join([*(_line(d, args.dry_run) for d in found), summary]))
    return EXIT_FAILED if refused else 0


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold deliveries redrive ...` to the CLI (``command`` is build_parser's helper)."""
    deliveries = sub.add_parser("deliveries", help="webhook deliveries: redrive dead letters, retry now",
                                parents=[common])
    actions = deliveries.add_subparsers(dest="deliveries_command", required=True, parser_class=type(deliveries))
    p = command("redrive", cmd_redrive, "try a dead-lettered delivery again with a fresh retry budget, or run a "
                                        "scheduled retry now (appends redrive_requested; never edits a row)", actions)
    p.add_argument("delivery", nargs="?", metavar="ID", help="the message id, or the delivery id <sender>:<message>")
    p.add_argument("--dead-letters", action="store_true", help="every dead-lettered delivery instead of one")
    p.add_argument("--since", type=moment, default=None, metavar="TIME",
                   help="with --dead-letters: only those dead-lettered at or after TIME (ISO 8601 or `now`)")
    p.add_argument("--dry-run", action="store_true", help="say what would be redriven; append nothing")
    p.add_argument("--sender", metavar="SENDER_ID", default=None, help="the sender, when several used the message id")
    p.add_argument("--by", default=None, help="who asks (kept in the event)")
    p.add_argument("--reason", default=None, help="why (kept in the event)")
