"""`dynafold rebuild VIEW|all` and `dynafold views list|drop|activate`: blue/green view tables.

A rebuild fills fresh versioned tables from the event log while the live ones keep serving,
proves them equal row by row, and with ``--switch`` makes them active. Old versions stay until
`dynafold views drop`. Exit 0 when the rebuilt views equal the live ones, 1 when they differ,
2 on bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from events.errors import DynafoldError
from processors.cli.query import positive_int
from processors.adapters.view_versions import PARAMETER_ENV, LocalVersions, SsmVersions
from processors.local.tables import local_tables

if TYPE_CHECKING:
    from processors.cli.main import Context

DEFAULT_STATE_DIR = Path(".dynafold")
_SHOWN_DIFFERENCES = 20


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a rate > 0 (items per second), got {text!r}")
    return value


def _versions_config(args: argparse.Namespace) -> Any:
    parameter = args.versions_parameter or os.environ.get(PARAMETER_ENV)
    return SsmVersions(parameter) if parameter else LocalVersions(Path(args.state_dir) / "views.json")


def _views(name: str) -> list[Any]:
    from projections.registry import VIEWS, VIEWS_BY_NAME

    if name == "all":
        return list(VIEWS)
    if name not in VIEWS_BY_NAME:
        raise DynafoldError(f"unknown view {name!r} (one of {', '.join(VIEWS_BY_NAME)}, or all)")
    return [VIEWS_BY_NAME[name]]


def _live_tables(ctx: "Context", versions: Any) -> dict[str, str]:

    return dict(local_tables(ctx.table_prefix, versions=versions.read()).views)


def cmd_rebuild(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.progress import Progress
    from processors.operations.rebuild import RebuildOptions, Rebuilder

    views = _views(args.view)
    options = RebuildOptions(segments=args.segments, workers=args.workers, max_write_rate=args.max_write_rate)
    versions = _versions_config(args)
    rebuilder = Rebuilder(ctx.client(), ctx.store(), prefix=ctx.table_prefix, views=views,
                          live_tables=_live_tables(ctx, versions), versions=versions,
                          state_dir=Path(args.state_dir), options=options,
                          progress=lambda total: Progress(total, tty=None if not ctx.as_json else False))
    if args.dry_run:
        plan, resumed = rebuilder.plan(restart=args.restart)
        guess = rebuilder.estimate()
        payload = {"dry_run": True, "views": plan.views, "targets": plan.targets, "resumes": resumed, **guess.to_dict()}
        human = "\n".join([
            f"dry run: rebuild {', '.join(plan.views)} into {', '.join(plan.targets.values())}"
            + (" (resuming)" if resumed else ""),
            f"  events   ~{guess.events:,} in ~{guess.streams:,} streams",
            f"  rows     ~{guess.rows:,} (the live tables' size)",
            f"  reads    ~{guess.read_units:,} read units (one scan of the log; a catch-up reads its keys again)",
            f"  writes   ~{guess.write_units:,} write units",
            f"  time     ~{guess.seconds:,.0f} s" + (f" at --max-write-rate {args.max_write_rate:g}/s"
                                                     if args.max_write_rate else ""),
            "nothing was changed",
        ])
        emit(payload, as_json=ctx.as_json, human=human)
        return 0
    plan, resumed = rebuilder.plan(restart=args.restart)
    say = (lambda line: None) if ctx.as_json else (lambda line: print(line, flush=True))
    say(f"rebuilding {', '.join(plan.views)} from the event log into {', '.join(plan.targets.values())}")
    result = rebuilder.run(plan, resumed=resumed, switch=args.switch, say=say)
    comparison = result.comparison
    payload = {
        "views": plan.views, "targets": plan.targets, "resumed": resumed, "events": plan.events,
        "streams": plan.streams, "rows": plan.rows, "caught_up": result.caught_up,
        "seconds": round(result.seconds, 2), "equal": comparison.equal, "rows_compared": comparison.rows,
        "differences": [str(d) for d in comparison.differences],
        "failed_streams": plan.failed_streams, "switched": result.switched,
    }
    lines = [
        f"read {plan.events:,} events of {plan.streams:,} streams, wrote {plan.rows:,} rows, "
        f"caught up {result.caught_up:,} events, in {result.seconds:.1f} s",
        *(f"  undecodable stream {s}" for s in plan.failed_streams[:_SHOWN_DIFFERENCES]),
    ]
    compared = ", ".join(f"{family} {count:,}" for family, count in comparison.rows.items())
    if comparison.equal:
        lines.append(f"EQUAL: rebuilt rows match the live rows ({compared})")
    else:
        lines.append(f"DIFFERENT: {len(comparison.differences):,} rows differ ({compared} live rows compared)")
        lines.extend(f"  {d}" for d in comparison.differences[:_SHOWN_DIFFERENCES])
        if len(comparison.differences) > _SHOWN_DIFFERENCES:
            lines.append(f"  ... and {len(comparison.differences) - _SHOWN_DIFFERENCES:,} more (--json lists all)")
    if result.switched is not None:
        lines.append(f"switched: {', '.join(f'{f} -> {v}' for f, v in sorted(result.switched.items()))} "
                     f"({versions}); the old tables stay until `dynafold views drop`")
    elif args.switch:
        lines.append("not switched: the rebuilt views differ from the live ones")
    emit(payload, as_json=ctx.as_json, human="\n".join(lines))
    return 0 if comparison.equal else 1


def _family_tables(ctx: "Context", args: argparse.Namespace) -> tuple[Any, dict[str, str], list[str]]:
    from processors.local.tables import template_view_versions
    from processors.operations.tables import list_table_names

    versions = _versions_config(args)
    active = {**template_view_versions(), **versions.read()}
    return versions, active, list_table_names(ctx.client())


def cmd_views_list(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table
    from processors.operations.template import local_table_name
    from projections.rebuild_plan import existing_versions
    from projections.view_tables import table_stats

    _, active, names = _family_tables(ctx, args)
    rows = []
    for family, version in sorted(active.items()):
        for number in existing_versions(family, names, ctx.table_prefix):
            name = local_table_name(ctx.table_prefix, f"{family}-v{number}")
            stats = table_stats(ctx.client(), name)
            rows.append({"family": family, "version": f"v{number}", "active": f"v{number}" == version,
                         "table": name, "items": stats["items"]})
    emit(rows, as_json=ctx.as_json, human=table(rows, ["family", "version", "active", "table", "items"]))
    return 0


def _family_version(ctx: "Context", args: argparse.Namespace) -> tuple[Any, dict[str, str], str]:
    from processors.operations.template import local_table_name
    from projections.rebuild_plan import version_number

    versions, active, names = _family_tables(ctx, args)
    if args.family not in active:
        raise DynafoldError(f"unknown view table family {args.family!r} (one of {', '.join(sorted(active))})")
    version_number(args.version)
    name = local_table_name(ctx.table_prefix, f"{args.family}-{args.version}")
    if name not in names:
        raise DynafoldError(f"table {name} does not exist (see `dynafold views list`)")
    return versions, active, name


def cmd_views_drop(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.tables import drop_view_table

    _, active, name = _family_version(ctx, args)
    if active[args.family] == args.version:
        raise DynafoldError(f"{name} is the active {args.family} table: switch to another version first")
    drop_view_table(ctx.client(), name)
    emit({"dropped": name}, as_json=ctx.as_json, human=f"dropped {name}")
    return 0


def cmd_views_activate(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    versions, _, name = _family_version(ctx, args)
    written = versions.write({args.family: args.version})
    emit({"active": written}, as_json=ctx.as_json, human=f"{args.family} -> {args.version} ({name}) in {versions}")
    return 0


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                        help="local settings and rebuild progress (default .dynafold)")
    parser.add_argument("--versions-parameter", default=None, metavar="NAME",
                        help=f"SSM parameter holding the active versions on AWS (default ${PARAMETER_ENV}; "
                             "without it the local settings file)")


def register(sub: Any, command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add `dynafold rebuild` and `dynafold views ...` (``command`` is build_parser's helper)."""
    p = command("rebuild", cmd_rebuild, "rebuild a view (or all) from the event log into fresh tables, "
                                        "prove it equal to the live one, optionally switch")
    _settings(p)
    p.add_argument("view", help="view name (inventory, pending-errors, delivery-status, alerts) or all")
    p.add_argument("--segments", type=positive_int, default=4, help="parallel scan segments (default 4)")
    p.add_argument("--workers", type=positive_int, default=4, help="segments folded at once (default 4)")
    p.add_argument("--max-write-rate", type=_positive_rate, default=None, metavar="ITEMS_PER_S",
                   help="cap on rows written per second (default: no cap)")
    p.add_argument("--dry-run", action="store_true",
                   help="estimate events, streams, rows, units and time; change nothing")
    p.add_argument("--switch", action="store_true", help="make the rebuilt tables active when they compare equal")
    p.add_argument("--restart", action="store_true", help="start afresh instead of resuming an interrupted rebuild")

    views = sub.add_parser("views", help="versions of the view tables (list, drop, activate)", parents=[common])
    views_sub = views.add_subparsers(dest="views_command", required=True, parser_class=type(views))
    p = command("list", cmd_views_list, "every version of every view table, and which is active", views_sub)
    _settings(p)
    for name, handler, text in (("drop", cmd_views_drop, "delete an inactive version of a view table"),
                                ("activate", cmd_views_activate, "make a version of a view table active")):
        p = command(name, handler, text, views_sub)
        _settings(p)
        p.add_argument("family", help="table family, e.g. inventory or inventory-returns")
        p.add_argument("version", help="e.g. v1")
