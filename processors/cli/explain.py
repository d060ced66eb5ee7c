"""`dynafold explain ...`: the support questions, answered in sentences (``--json``: the same answer
with its facts and the events it was read from).

Each answer comes from the composition root's support services (``Context.root()``), the ones
the HTTP routes use: `explain order` is `GET /orders/{order}/explanation`, `explain delivery` is
`GET /messages/{message_id}/explanation`. An unknown order or delivery exits 4.
"""

from __future__ import annotations

import argparse
from typing import Any

from processors.cli.context import AddCommand, Context
from projections.explanation import Explanation


def _show(ctx: Context, answer: Explanation) -> int:
    from processors.cli.output import emit

    emit(answer.to_dict(), as_json=ctx.as_json, human=answer.text())
    return 0


def cmd_order(ctx: Context, args: argparse.Namespace) -> int:
    return _show(ctx, ctx.root().support.orders.explain(args.order))


def cmd_delivery(ctx: Context, args: argparse.Namespace) -> int:
    return _show(ctx, ctx.root().support.deliveries.explain(args.delivery, args.sender))


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold explain order|delivery ...` to the CLI (``command`` is build_parser's helper)."""
    explain = sub.add_parser("explain", help="answer a support question in sentences (--json for scripts)",
                             description="answer a support question in sentences (--json for scripts)",
                             parents=[common])
    questions = explain.add_subparsers(dest="explain_command", required=True, parser_class=type(explain))
    p = command("order", cmd_order, "why wasn't this order sent? its errors, their grace periods and fixes, "
                                    "the notification, what is still pending", questions)
    p.add_argument("order", metavar="NUMBER|ID", help="the InFlow order number (SO-000019) or the order id")
    p = command("delivery", cmd_delivery, "did this webhook get delivered? the next retry, the retries left, "
                                          "when it gives up", questions)
    p.add_argument("delivery", metavar="MESSAGE_ID", help="the message id, or the delivery id <sender>:<message>")
    p.add_argument("--sender", metavar="SENDER_ID", default=None, help="the sender, when several used the message id")
