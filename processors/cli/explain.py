"""`dynafold explain order|delivery|sku`: the support questions, answered in sentences (``--json``: the
same answer with its facts and the events it was read from).

Each answer comes from the composition root's support services (``Context.root().support``), the
ones the HTTP routes use: `explain order` is `GET /orders/{order}/explanation`, `explain delivery`
is `GET /messages/{message_id}/explanation`, `explain sku` is `GET /inventory/{sku}/explanation`.
What does not exist exits 4 (the routes' 404).

A question is one entry in ``QUESTIONS``: its subcommand, its help, its argument and how the
support services answer it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from processors.cli.context import EXIT_OK, AddCommand, Context
from processors.services.support import Support
from projections.explanation import Explanation


@dataclass(frozen=True)
class Question:
    name: str
    help: str
    metavar: str  # the thing asked about
    argument_help: str
    ask: Callable[[Support, argparse.Namespace], Explanation]
    options: tuple[tuple[str, dict[str, Any]], ...] = field(default=())


QUESTIONS: tuple[Question, ...] = (
    Question("order", "why wasn't this order sent? its errors, their grace periods and fixes, the notification, "
             "what is still pending", "NUMBER|ID", "the InFlow order number (SO-000019) or the order id",
             lambda support, args: support.orders.explain(args.subject)),
    Question("delivery", "did this webhook get delivered? the next retry, the retries left, when it gives up",
             "MESSAGE_ID", "the message id, or the delivery id <sender>:<message>",
             lambda support, args: support.deliveries.explain(args.subject, args.sender),
             (("--sender", {"metavar": "SENDER_ID", "default": None,
                            "help": "the sender, when several used the message id"}),)),
    Question("sku", "why does Shopify show what it shows for a SKU? our count, each item's levels, pushes, "
             "echoes, drift", "SKU", "the SKU", lambda support, args: support.skus.explain(args.subject)),
)


def _answer(question: Question) -> Callable[[Context, argparse.Namespace], int]:
    def answer(ctx: Context, args: argparse.Namespace) -> int:
        from processors.cli.output import emit

        explanation = question.ask(ctx.root().support, args)
        emit(explanation.to_dict(), as_json=ctx.as_json, human=explanation.text())
        return EXIT_OK

    return answer


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold explain <question> ...` to the CLI (``command`` is build_parser's helper)."""
    explain = sub.add_parser("explain", help="answer a support question in sentences (--json for scripts)",
                             description="answer a support question in sentences (--json for scripts)",
                             parents=[common])
    questions = explain.add_subparsers(dest="explain_command", required=True, parser_class=type(explain))
    for question in QUESTIONS:
        parser = command(question.name, _answer(question), question.help, questions)
        parser.add_argument("subject", metavar=question.metavar, help=question.argument_help)
        for flag, options in question.options:
            parser.add_argument(flag, **options)
