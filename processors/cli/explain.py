"""`dynafold explain ...`: the support questions, answered in sentences (``--json``: the same
answer with its facts and the events it was read from). Each answer comes from the composition
root's read service (processors/services/explanations.py), as the ``GET /explain/...`` routes' do.

A question is one line in ``QUESTIONS``: its subcommand, its help, its argument and the service
method that answers it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processors.cli.context import EXIT_OK, AddCommand, Context
from processors.services.explanations import Explanations
from projections.explanation import Explanation


@dataclass(frozen=True)
class Question:
    name: str
    help: str
    argument: str  # the thing asked about (metavar and help)
    ask: Callable[[Explanations, str], Explanation]


QUESTIONS: tuple[Question, ...] = (
    Question("sku", "why does Shopify show what it shows for a SKU (our count, each item's levels, pushes, "
             "echoes, drift)", "SKU", Explanations.sku),
)


def _answer(question: Question) -> Callable[[Context, argparse.Namespace], int]:
    def answer(ctx: Context, args: argparse.Namespace) -> int:
        from processors.cli.output import emit

        explanation = question.ask(ctx.root().explanations, args.subject)
        emit(explanation.to_dict(), as_json=ctx.as_json, human=explanation.text())
        return EXIT_OK

    return answer


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    explain = sub.add_parser("explain", help="answers to support questions, in sentences", parents=[common])
    questions = explain.add_subparsers(dest="explain_command", required=True, parser_class=type(explain))
    for question in QUESTIONS:
        command(question.name, _answer(question), question.help, questions).add_argument(
            "subject", metavar=question.argument)
