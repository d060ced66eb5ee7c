"""`dynafold rebuild VIEW|all` and `dynafold views list|drop|activate`: blue/green view tables.

A rebuild fills fresh versioned tables from the event log while the live ones keep serving,
proves them equal row by row, and with ``--switch`` makes them active. Old versions stay until
`dynafold views drop`. Exit 0 when the rebuilt views equal the live ones, 1 when they differ,
2 on bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from events.errors import DynafoldError
from processors.adapters.view_versions import PARAMETER_ENV, SsmVersions
from processors.local.tables import local_tables
from processors.cli.context import AddCommand, Context, Interrupted, positive_int
from processors.operations.rebuild import version_of


_SHOWN_DIFFERENCES = 20


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a rate > 0 (items per second), got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _versions_config(ctx: "Context", args: argparse.Namespace) -> Any:
    """The SSM parameter on AWS; locally the stack's views.json, which must describe this database."""
    parameter = args.versions_parameter or os.environ.get(PARAMETER_ENV)
    if parameter:
        return SsmVersions(parameter)
    versions = ctx.versions()
    problem = versions.foreign()
    if problem is not None:
        raise DynafoldError(f"{problem}: give this stack's own --state-dir (or remove the file if that stack is gone)")
    return versions


def _views(name: str) -> list[Any]:
    """The views a name means: `all`, a view's name, or another name it goes by (a table family's,
    a `dynafold query` command's)."""
    from projections.registry import VIEW_NAMES, VIEWS, VIEWS_BY_NAME

    if name == "all":
        return list(VIEWS)
    if name not in VIEW_NAMES:
        raise DynafoldError(f"unknown view {name!r} (one of {', '.join(VIEWS_BY_NAME)}, or all)")
    return [VIEW_NAMES[name]]


def _live_tables(ctx: "Context", versions: Any) -> dict[str, str]:
    return dict(local_tables(ctx.table_prefix, versions=versions.read()).views)


def _sfn() -> Any:  # the Step Functions client; a test replaces it
    from processors.adapters.aws import stepfunctions_client

    return stepfunctions_client()


def _follow_on_aws(ctx: "Context", args: argparse.Namespace, execution_arn: str, total_events: int,
                   views: list[Any]) -> int:
    from processors.cli.output import emit
    from processors.operations.progress import Progress
    from processors.operations.rebuild_aws import follow

    say = (lambda line: None) if ctx.as_json else (lambda line: print(line, flush=True))
    say(f"following {execution_arn} (Ctrl-C stops following; the rebuild goes on: `dynafold rebuild status`)")
    try:
        ended = follow(_sfn(), execution_arn, total_events, Progress(total_events or None, tty=None if not ctx.as_json
                                                                     else False), poll=args.poll_seconds)
    except KeyboardInterrupt:
        say("\nstopped following; the execution keeps running on AWS. Reattach with `dynafold rebuild status`.")
        return 0
    _lock(ctx, views, "dynafold rebuild status").release_execution(execution_arn)  # it ended: the views are free
    verdict = ended["output"] or {}
    payload = {"execution_arn": execution_arn, **ended}
    if ended["status"] != "SUCCEEDED":
        # DescribeExecution's error and cause are optional (an execution stopped by hand has neither).
        emit(payload, as_json=ctx.as_json,
             human=": ".join(part for part in (ended["status"], ended["error"], ended["cause"]) if part))
        return 1
    carried = sum((verdict.get("after_switch") or {}).get("caught_up") or [])
    lines = [f"caught up {verdict.get('caught_up', 0) + carried:,} events"]
    compared = ", ".join(f"{f} {n:,}" for f, n in (verdict.get("rows_compared") or {}).items())
    if verdict.get("equal"):
        lines.append(f"EQUAL: rebuilt rows match the live rows ({compared})")
    else:
        lines.append(f"DIFFERENT: {verdict.get('difference_count', 0):,} rows differ ({compared} live rows compared)")
        lines.extend(f"  {d}" for d in (verdict.get("differences") or [])[:_SHOWN_DIFFERENCES])
    if verdict.get("switched"):
        lines.append(f"switched: {', '.join(f'{f} -> {v}' for f, v in sorted(verdict['switched'].items()))}")
    emit(payload, as_json=ctx.as_json, human="\n".join(lines))
    return 0 if verdict.get("equal") else 1


def cmd_rebuild_status(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.operations.rebuild_aws import last_started

    started = last_started(ctx.run_dir, ctx.table_prefix)
    views = [view for name in started.get("views", []) for view in _views(name)]
    return _follow_on_aws(ctx, args, started["execution_arn"], int(started["total_events"]), views)


def cmd_rebuild_on_aws(ctx: "Context", args: argparse.Namespace, views: list[Any]) -> int:
    from processors.operations.rebuild import table_rule, template_base
    from processors.adapters.rebuild_executions import STATE_MACHINE_ENV
    from processors.operations.rebuild_aws import AwsOptions, execution_input, execution_running, start
    from processors.operations.tables import create_copy
    from projections.view_tables import table_stats

    state_machine = args.state_machine or os.environ.get(STATE_MACHINE_ENV)
    if not state_machine:
        raise DynafoldError(f"--on-aws needs --state-machine ARN or ${STATE_MACHINE_ENV} "
                            "(the stack output RebuildStateMachineArn)")
    options = AwsOptions(segments=args.segments or 64, max_concurrency=args.max_concurrency,
                         max_write_rate=args.max_write_rate,
                         **({} if args.settle_seconds is None else {"settle_seconds": args.settle_seconds}))
    sfn = _sfn()
    # The lock passes from this command to the execution it starts, which holds it while it runs:
    # a second rebuild of these views is refused until then, naming the execution.
    lock = _lock(ctx, views, f"dynafold rebuild {args.view} --on-aws",
                 execution_running=lambda arn: execution_running(sfn, arn))
    lock.acquire()
    try:
        rebuilder = _rebuilder(ctx, args, views)
        plan, _ = rebuilder.plan(restart=True)  # an execution is its own checkpoint: no local progress to resume
        client = ctx.client()
        warm = rebuilder.plan_scale(on_aws=True, workers=min(options.segments, options.max_concurrency)).warm_writes
        for family, table in plan.targets.items():
            # The copy gets the live table's (the stack's) tags, as a local rebuild's does.
            if create_copy(client, template_base(family), table, tags_from=rebuilder.live_tables[family],
                           warm_writes=warm, warn=_say(ctx)):
                _say(ctx)(f"created {table}" + (f" (pre-warmed to {warm:,} writes/s)" if warm else ""))
        payload = execution_input(plan.views, rebuilder.live_tables, plan.targets,
                                  {f: table_rule(f) for f in plan.targets}, options, switch=args.switch)
        total = table_stats(client, ctx.store().events_table)["items"]
        arn = start(sfn, state_machine, payload, ctx.run_dir, ctx.table_prefix, total)
    except BaseException:
        lock.release()
        raise
    lock.hand_to_execution(arn)
    if not ctx.as_json:
        print(f"started {arn}: {options.segments} segments, at most {options.max_concurrency} at once, "
              f"into {', '.join(plan.targets.values())}", flush=True)
    return _follow_on_aws(ctx, args, arn, total, views)


def _dry_run(ctx: "Context", args: argparse.Namespace, rebuilder: Any) -> int:
    """The estimate for the chosen mode (local --workers N, or --on-aws --max-concurrency M)."""
    from processors.cli.output import emit
    from projections.rebuild.plan import assumed

    plan, resumed = rebuilder.plan(restart=args.restart)
    base = assumed(args.assume_events) if args.assume_events else rebuilder.estimate()
    workers = min(args.segments or 64, args.max_concurrency) if args.on_aws else rebuilder.options.workers
    guess = rebuilder.plan_scale(base, on_aws=args.on_aws, workers=workers,
                                 segments=(args.segments or 64) if args.on_aws else None, switch=args.switch)
    payload = {"dry_run": True, "views": plan.views, "targets": plan.targets, "resumes": resumed,
               "assumed_log": bool(args.assume_events), **guess.to_dict()}
    where = (f"on AWS, {workers} segment workers at once (Distributed Map)" if args.on_aws
             else f"locally, {workers} worker process{'es' if workers > 1 else ''}")
    human = "\n".join([
        f"dry run: rebuild {', '.join(plan.views)} into {', '.join(plan.targets.values())} {where}"
        + (" (resuming)" if resumed else ""),
        *( [f"  a hypothetical log of {args.assume_events:,} events"] if args.assume_events else []),
        f"  events   ~{guess.events:,} in ~{guess.streams:,} streams",
        f"  rows     ~{guess.rows:,}",
        f"  reads    ~{guess.read_units:,} read units (one eventually consistent scan of the log)",
        f"  writes   ~{guess.write_units:,} write units",
        f"  cost     ~${guess.cost_usd:,.2f}" + (f" + pre-warm ({guess.prewarm_units:,} write units/s raised once)"
                                                  if guess.prewarm_units else ""),
        "  tables   " + (f"pre-warmed to {guess.warm_writes:,} writes/s" if guess.warm_writes
                         else "not pre-warmed (on-demand default, 4,000 writes/s)"),
        f"  time     ~{format_seconds(guess.seconds)} (fill {format_seconds(guess.fill_seconds)}, bound by "
        f"{guess.bound}; compare {format_seconds(guess.compare_seconds)}"
        + (f"; switch and carry-over {format_seconds(guess.switch_seconds)})" if guess.switch_seconds else ")"),
        "  assuming:",
        *(f"    - {line}" for line in guess.assumptions),
        "nothing was changed",
    ])
    emit(payload, as_json=ctx.as_json, human=human)
    return 0


def _say(ctx: "Context") -> Callable[[str], None]:
    def say(line: str) -> None:
        if line.startswith("warning: "):  # e.g. protection the engine could not apply: shown even with --json
            print(line, file=sys.stderr, flush=True)
        elif not ctx.as_json:
            print(line, flush=True)

    return say


def format_seconds(seconds: float) -> str:
    from processors.operations.progress import format_duration

    return format_duration(seconds)


def _lock(ctx: "Context", views: list[Any], command: str, **options: Any) -> Any:
    """The views' rebuild lock, in the stack's idempotency table (local and AWS alike)."""
    from processors.operations.rebuild_lock import RebuildLock, local_holder

    return RebuildLock(ctx.client(), ctx.tables().idempotency, [view.name for view in views],
                       holder=local_holder(command), **options)


def _rebuilder(ctx: "Context", args: argparse.Namespace, views: list[Any]) -> Any:
    from processors.operations.progress import Progress
    from processors.operations.rebuild import RebuildOptions, Rebuilder

    options = RebuildOptions(segments=max(args.segments or 4, args.workers), workers=args.workers,
                             max_write_rate=args.max_write_rate, warm_writes=args.warm_writes,
                             settle_seconds=60.0 if args.settle_seconds is None else args.settle_seconds)
    versions = _versions_config(ctx, args)
    return Rebuilder(ctx.client(), ctx.store(), prefix=ctx.table_prefix, views=views,
                     live_tables=_live_tables(ctx, versions), versions=versions,
                     state_dir=ctx.run_dir, options=options,
                     progress=lambda total: Progress(total, tty=None if not ctx.as_json else False),
                     client_factory=ctx.client_factory())


def cmd_rebuild(ctx: "Context", args: argparse.Namespace) -> int:
    if args.view == "status":
        return cmd_rebuild_status(ctx, args)
    views = _views(args.view)
    if args.dry_run:
        return _dry_run(ctx, args, _rebuilder(ctx, args, views))
    if args.on_aws:
        return cmd_rebuild_on_aws(ctx, args, views)
    command = f"dynafold rebuild {args.view}" + (" --switch" if args.switch else "")
    # One rebuild per view at a time: the plan (which checkpoint to resume), the fill and the switch
    # all happen under the lock, so two runs never resume one checkpoint or race to switch.
    with _lock(ctx, views, command).held() as lock:
        rebuilder = _rebuilder(ctx, args, views)
        rebuilder.before_switch = lock.check
        plan, resumed = rebuilder.plan(restart=args.restart)
        say = _say(ctx)
        say(f"rebuilding {', '.join(plan.views)} from the event log into {', '.join(plan.targets.values())}")
        try:
            result = rebuilder.run(plan, resumed=resumed, switch=args.switch, say=say)
        except KeyboardInterrupt:
            raise Interrupted(f"{rebuilder.phase} ({len(plan.done_segments)} of {plan.total_segments} segments "
                              f"filled, {plan.events:,} events read)") from None
    return _report(ctx, args, rebuilder, plan, resumed, result)


def _report(ctx: "Context", args: argparse.Namespace, rebuilder: Any, plan: Any, resumed: bool, result: Any) -> int:
    from processors.cli.output import emit

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
        old = {family: version_of(table) for family, table in rebuilder.live_tables.items()}
        payload["left_behind"] = sorted(rebuilder.live_tables.values())
        lines.append(f"switched: {', '.join(f'{f} -> {v}' for f, v in sorted(result.switched.items()))} "
                     f"({rebuilder.versions_config})")
        lines.append("the old tables stay (a way back: `dynafold views activate FAMILY VERSION`); drop them with "
                     + "; ".join(f"`dynafold views drop {f} {v}`" for f, v in sorted(old.items())))
    else:
        # Nothing switched: the rebuilt tables are left beside the live ones until dropped.
        first_family, first_table = sorted(plan.targets.items())[0]
        payload["left_behind"] = sorted(plan.targets.values())
        why = ("the rebuilt views differ from the live ones" if args.switch
               else "no --switch: the live tables stay active")
        lines.append(f"not switched ({why}); the rebuilt tables stay: {', '.join(sorted(plan.targets.values()))}")
        lines.append(f"drop them with `dynafold views drop {first_family} {version_of(first_table)}` (it drops the "
                     "rebuild's other tables and its progress with it), or rebuild with --switch")
    emit(payload, as_json=ctx.as_json, human="\n".join(lines))
    return 0 if comparison.equal else 1


def _family_tables(ctx: "Context", args: argparse.Namespace) -> tuple[Any, dict[str, str], list[str]]:
    from processors.local.tables import template_view_versions
    from processors.operations.tables import list_table_names

    versions = _versions_config(ctx, args)
    active = {**template_view_versions(), **versions.read()}
    return versions, active, list_table_names(ctx.client())


def cmd_views_list(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table
    from processors.operations.template import local_table_name
    from projections.rebuild.plan import existing_versions
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
    from projections.rebuild.plan import version_number

    versions, active, names = _family_tables(ctx, args)
    if args.family not in active:
        raise DynafoldError(f"unknown view table family {args.family!r} (one of {', '.join(sorted(active))})")
    version_number(args.version)
    name = local_table_name(ctx.table_prefix, f"{args.family}-{args.version}")
    if name not in names:
        raise DynafoldError(f"table {name} does not exist (see `dynafold views list`)")
    return versions, active, name


def cmd_views_drop(ctx: "Context", args: argparse.Namespace) -> int:
    from projections.registry import VIEWS

    # Not while a rebuild runs: it may be filling this version, or its siblings that go with it.
    with _lock(ctx, list(VIEWS), f"dynafold views drop {args.family} {args.version}").held():
        return _drop(ctx, args)


def _drop(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.rebuild import rebuilds_filling
    from processors.operations.tables import drop_view_table, list_table_names

    _, active, name = _family_version(ctx, args)
    if active[args.family] == args.version:
        raise DynafoldError(f"{name} is the active {args.family} table: switch to another version first")
    # A rebuild that fills this table fills its siblings too (one version of each of its views'
    # families): they go with it, and so does its progress, so nothing resumes into missing tables.
    in_use = {f"{ctx.table_prefix}{family}-{version}" for family, version in active.items()}
    progress_files = rebuilds_filling(ctx.run_dir, name)
    siblings = {table for _, targets in progress_files for table in targets.values()} - in_use - {name}
    existing = set(list_table_names(ctx.client()))
    dropped = [name, *sorted(siblings & existing)]
    for table in dropped:
        drop_view_table(ctx.client(), table)
    for path, _ in progress_files:
        path.unlink()
    payload = {"dropped": dropped, "progress_removed": [str(path) for path, _ in progress_files]}
    emit(payload, as_json=ctx.as_json, human="\n".join([f"dropped {table}" for table in dropped]
                                                        + [f"removed {path}" for path, _ in progress_files]))
    return 0


def cmd_views_activate(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    # Not while a rebuild of the family's view runs: its switch would race this one.
    from projections.registry import VIEW_NAMES

    family_view = [VIEW_NAMES[args.family]] if args.family in VIEW_NAMES else []  # an unknown one is said below
    with _lock(ctx, family_view, f"dynafold views activate {args.family} {args.version}").held():
        versions, _, name = _family_version(ctx, args)
        written = versions.write({args.family: args.version})
    emit({"active": written}, as_json=ctx.as_json, human=f"{args.family} -> {args.version} ({name}) in {versions}")
    return 0


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--versions-parameter", default=None, metavar="NAME",
                        help=f"SSM parameter holding the active versions on AWS (default ${PARAMETER_ENV}; "
                             "without it the local settings file)")


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold rebuild` and `dynafold views ...` (``command`` is build_parser's helper)."""
    p = command("rebuild", cmd_rebuild, "rebuild a view (or all) from the event log into fresh tables, "
                                        "prove it equal to the live one, optionally switch "
                                        "(`dynafold rebuild status` reattaches to a rebuild started --on-aws)")
    _settings(p)
    from projections.registry import VIEWS

    p.add_argument("view", help=f"view name ({', '.join(view.name for view in VIEWS)}) or all")
    p.add_argument("--segments", type=positive_int, default=None,
                   help="parallel scan segments, the unit of work (default 4, at least --workers; --on-aws 64)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="local processes running the segment worker (default 1)")
    p.add_argument("--max-write-rate", type=_positive_rate, default=None, metavar="ITEMS_PER_S",
                   help="cap on rows written per second (default: no cap)")
    p.add_argument("--warm-writes", type=_non_negative_int, default=None, metavar="UNITS_PER_S",
                   help="pre-warm the new tables and their indexes to this many write units/s (CreateTable "
                        "WarmThroughput, charged once; 0: off). Default: what the rebuild will write, within "
                        "the table quota, when that is more than a new table's 4,000/s for over 5 minutes; "
                        "--dry-run shows it")
    p.add_argument("--dry-run", action="store_true",
                   help="estimate events, streams, rows, units and time; change nothing")
    p.add_argument("--switch", action="store_true", help="make the rebuilt tables active when they compare equal")
    p.add_argument("--restart", action="store_true", help="start afresh instead of resuming an interrupted rebuild")
    p.add_argument("--settle-seconds", type=_non_negative_float, default=None, metavar="S",
                   help="under live traffic, how long the comparison waits at most for the live projector to "
                        "pass a stream the rebuild already has (default 60; --on-aws 120)")
    p.add_argument("--on-aws", action="store_true",
                   help="run on AWS: start the rebuild state machine (Distributed Map over the segments) and follow it")
    p.add_argument("--max-concurrency", type=positive_int, default=64,
                   help="--on-aws: segments folded at once (default 64)")
    p.add_argument("--state-machine", default=None, metavar="ARN",
                   help="--on-aws: the stack's RebuildStateMachineArn (default $DYNAFOLD_REBUILD_STATE_MACHINE)")
    p.add_argument("--assume-events", type=positive_int, default=None, metavar="N",
                   help="--dry-run: plan for a hypothetical log of N events (e.g. 100000000)")
    p.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)

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
