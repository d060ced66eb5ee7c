"""`dynafold cost`: what the stack costs per million events and per month at a rate (processors.operations.cost),
and whether the live path holds that rate (processors.operations.partitions).

Computed from template.yaml (tables and their indexes, functions' memory, architecture and batch
sizes) and the default traffic mix: the cost, then every table's and index's hottest partition key
against DynamoDB's per-key limits, the stream shards to expect and what the projector and the reactor
take per shard. `--markdown` prints the README's tables (the hot keys with `--rate`), `--json` everything.
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

    from processors.operations import partitions
    template_path = Path(args.template) if args.template else TEMPLATE_PATH
    if not template_path.is_file():
        raise DynafoldError(f"--template {args.template}: no such file")
    try:
        template = load_template(template_path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DynafoldError(f"--template {args.template}: cannot read it: {str(error).splitlines()[0]}") from None
    try:  # the model needs dynafold's tables and functions: another template lacks them
        result = estimate(shape_from_template(template), DEFAULT_ASSUMPTIONS)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise DynafoldError(f"--template {args.template}: not a dynafold SAM template (missing or malformed: "
                            f"{error})") from None
    rate = args.rate if args.rate is not None else 1.0
    live_path = partitions.analyse(rate, template)
    if args.markdown:  # the README's tables: the cost at its two rates, or at the one asked for and the hot keys
        human = (markdown(result) if args.rate is None
                 else f"{markdown(result, (rate,))}\n\n{partitions.markdown(live_path)}")
    else:
        human = f"{_human(result, rate)}\n\n{_hot_keys(live_path)}"
    emit({**as_dict(result, rate), "live_path": partitions.as_dict(live_path)}, as_json=ctx.as_json, human=human)
    return 0


def _hot_keys(path: Any) -> str:
    from processors.cli.output import table
    from processors.operations.partitions import READ_UNITS_PER_KEY, WRITE_UNITS_PER_KEY

    rows = [{"table / index": f"{k.table} {k.index or '(table)'}",
             "hottest key value": k.value + (f" (each of {k.buckets} buckets)" if k.buckets > 1 else ""),
             "writes/s": f"{k.write_units:,.0f} ({k.write_share:.0%})",
             "reads/s": f"{k.read_units:,.0f} ({k.read_share:.0%})", "limit": "OVER" if k.over else "ok"}
            for k in path.keys]
    lines = [f"hottest partition key of every table and index at {path.rate:g} events/s (limits per key value: "
             f"{WRITE_UNITS_PER_KEY:,} write, {READ_UNITS_PER_KEY:,} read units/s; "
             "see processors/operations/partitions.py):",
             table(rows, ["table / index", "hottest key value", "writes/s", "reads/s", "limit"], max_width=120),
             "",
             f"event table {path.event_table_write_units:,.0f} write, {path.event_table_read_units:,.0f} read units/s: "
             f"at least {path.shards} stream shard(s), {path.events_per_shard:,.0f} events/s each"]
    lines += [f"{c.function}: {c.ms_per_batch:,.0f} ms per batch of {c.batch_size} (measured {c.measured}): "
              f"{c.capacity:,.0f} events/s per shard at ParallelizationFactor {c.factor} "
              f"({'keeps up' if c.keeps_up else 'FALLS BEHIND'}; needs {c.factor_needed})" for c in path.consumers]
    if path.over:
        lines.append("OVER a per-key limit: " + ", ".join(f"{k.table} {k.index or '(table)'}" for k in path.over))
    return "\n".join(lines)


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
    p.add_argument("--rate", type=_rate, default=None,
                   help="events per second for the monthly figure and the hot keys (default 1)")
    p.add_argument("--markdown", action="store_true", help="the README's tables (the hot keys with --rate)")
    p.add_argument("--template", default=None, help="another template.yaml (default the project's)")
