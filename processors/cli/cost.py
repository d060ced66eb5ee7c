"""`dynafold cost`: what the stack costs per million events and per month at a rate (processors.operations.cost).

Computed from template.yaml (tables and their indexes, functions' memory, architecture and batch
sizes) and the default traffic mix; `--markdown` prints the README's table, `--json` everything.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from events.errors import DynafoldError
from processors.cli.context import AddCommand, Context



def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected events per second, got {text!r}") from None
    if not 0 < value <= 1e6:
        raise argparse.ArgumentTypeError(f"expected 0 < events per second <= 1000000, got {text!r}")
    return value


def cmd_cost(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.cost import (
        DEFAULT_ASSUMPTIONS,
        as_dict,
        estimate,
        markdown,
        shape_from_template,
    )
    from processors.operations.template import TEMPLATE_PATH, load_template

    import yaml

    path = Path(args.template) if args.template else TEMPLATE_PATH
    if not path.is_file():
        raise DynafoldError(f"--template {args.template}: no such file")
    try:
        template = load_template(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DynafoldError(f"--template {args.template}: cannot read it: {str(error).splitlines()[0]}") from None
    try:  # the model needs dynafold's tables and functions: another template lacks them
        result = estimate(shape_from_template(template), DEFAULT_ASSUMPTIONS)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise DynafoldError(f"--template {args.template}: not a dynafold SAM template (missing or malformed: "
                            f"{error})") from None
    rate = args.rate if args.rate is not None else 1.0
    if args.markdown:  # the README's table: its two rates unless one is asked for
        human = markdown(result) if args.rate is None else markdown(result, (rate,))
    else:
        human = _human(result, rate)
    emit(as_dict(result, rate), as_json=ctx.as_json, human=human)
    return 0


def _human(result: Any, rate: float) -> str:
    from processors.cli.output import table

    rows = [{"item": line.item, "units": line.units, "usd": f"${line.usd:,.2f}"} for line in result.per_million_busy]
    fixed = [{"item": line.item, "units": line.units, "usd": f"${line.usd:,.2f}"} for line in result.fixed_monthly]
    return "\n".join([
        "per million events (us-east-1 list prices; see processors/operations/cost.py):",
        table(rows, ["item", "units", "usd"], max_width=90),
        (f"total ${result.per_million():,.2f} busy, ${result.per_million(trickle=True):,.2f} at a trickle "
         f"(one record per invocation); storage ${result.storage_per_million_month:,.2f} per month kept"),
        "",
        "fixed, per month:",
        table(fixed, ["item", "units", "usd"], max_width=90),
        "",
        (f"a month at {rate:g} events/s: ${result.monthly(rate):,.2f} busy, "
         f"${result.monthly(rate, trickle=True):,.2f} at a trickle (X-Ray ${result.xray(rate):,.2f} of it)"),
    ])


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold cost` to the CLI (``command`` is build_parser's helper)."""
    p = command("cost", cmd_cost, "cost per million events and per month at a rate, from template.yaml")
    p.add_argument("--rate", type=_rate, default=None, help="events per second for the monthly figure (default 1)")
    p.add_argument("--markdown", action="store_true", help="the README's table")
    p.add_argument("--template", default=None, help="another template.yaml (default the project's)")
