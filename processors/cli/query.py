"""`dynafold query ...`: the views' questions on the command line (tables by default, --json for scripts).

Every subcommand is a view's ``Command`` (``projections/<view>/queries.py``), taken from the
registry and named as the view or its table family is in `dynafold rebuild` and `dynafold views`
(older spellings are aliases); `query all` prints every view's report sections.

A lookup of one thing that does not exist (a SKU, a message) prints one line and exits 4, as its
route answers 404; a list that is empty prints ``(none)`` (``[]`` with --json) and exits 0, with a
line saying why when the view knows (an order with nothing pending); a bad argument prints one line
and exits 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from projections.queries import ViewQueries
from projections.registry import UNITS
from projections.unit import Command, ViewUnit
from projections.view import ViewRow
from processors.cli.context import AddCommand, Context, argument_type



def _queries(ctx: "Context") -> ViewQueries:
    return ViewQueries(ctx.client(), ctx.view_tables().views)


def _handler(unit: ViewUnit, command: Command) -> Callable[["Context", argparse.Namespace], int]:
    def run(ctx: "Context", args: argparse.Namespace) -> int:
        from processors.cli.output import emit, table

        answer = command.run(_queries(ctx).of(unit), vars(args), datetime.now(timezone.utc))
        found: list[ViewRow]
        if answer.found is None:
            found = []
        elif isinstance(answer.found, ViewRow):  # single answers carry one row, the others a sequence
            found = [answer.found]
        else:
            found = list(answer.found)
        data: Any = ((found[0].to_dict() if found else None) if answer.single
                     else [row.to_dict() for row in found])
        cells = command.cells or (lambda row: row.to_dict())
        human = table([cells(row) for row in found], command.columns, max_width=60)
        if answer.footer:  # e.g. an order that exists with nothing pending: not an unknown order
            human += f"\n{answer.footer}"
        emit(data, as_json=ctx.as_json, human=human)
        return 0

    return run


def cmd_all(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.views_report import collect, render

    views = collect(_queries(ctx))
    emit(views, as_json=ctx.as_json, human=render(views))
    return 0


# ----------------------------------------------------------------------------- registration

def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold query <question> ...` to the CLI (``command`` is build_parser's helper)."""
    query = sub.add_parser("query", help=f"ask the views ({', '.join(unit.name for unit in UNITS)})",
                           description="ask the views; tables by default, --json for scripts",
                           parents=[common])
    questions = query.add_subparsers(dest="query_command", required=True, parser_class=type(query))

    command("all", cmd_all, "every view at a glance (what `dynafold demo` ends with)", questions)
    for unit in UNITS:
        for question in unit.commands:
            add_question(command, unit, question, questions, aliases=question.aliases)


def add_question(command: AddCommand, unit: ViewUnit, question: Command, parent: Any,
                 name: str | None = None, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    """One view question as a subcommand of ``parent`` (`query <name>`, or under another name
    elsewhere); ``aliases`` are its older spellings."""
    p = command(name or question.name, _handler(unit, question), question.help, parent, aliases=aliases)
    groups: dict[str, Any] = {}
    for arg in question.args:
        options = dict(arg.options)
        if "type" in options:
            options["type"] = argument_type(options["type"])
        if arg.group is not None and arg.group not in groups:
            groups[arg.group] = p.add_mutually_exclusive_group()
        target = p if arg.group is None else groups[arg.group]
        target.add_argument(*arg.flags, **options)
    return p
