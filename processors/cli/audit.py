"""`dynafold audit stream|search|trace|verify|export|import` and `dynafold check-history`.

Audits read the event table and never change it; `audit import` appends into another store,
idempotently (one key per event id), keeping ids, data and times byte for byte. Search and
trace are served by the table's indexes (by-type-shard-time, a kept by-type-time, by-correlation),
never by a scan.
Exit 0 ok, 1 a broken chain / undecodable event found, 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from events import catalogue
from events.errors import DynafoldError
from processors.cli.context import AddCommand, Context, moment


EARLIEST, LATEST = "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"
_SHOWN_PROBLEMS = 20


def _event_type(text: str) -> str:
    try:
        catalogue.split_type(text)
    except DynafoldError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _segments(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"expected 1..1000 segments, got {text!r}")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"expected a page size of 1..1000, got {text!r}")
    return int(text)


def _index(ctx: "Context") -> Any:
    from events.log_index import EventIndex

    return EventIndex(ctx.client(), ctx.tables().events)


def _audit_rows(events: Iterable[Any]) -> list[dict[str, Any]]:
    from events.envelope import format_time

    return [{"stream": e.stream, "version": e.version, "time": format_time(e.time), "type": e.type,
             "source": e.source, "correlation": e.correlation_id, "causation": e.causation_id} for e in events]


def _print_events(ctx: "Context", events: list[Any], footer: str = "") -> None:
    from processors.cli.output import emit, table

    human = table(_audit_rows(events), ["time", "stream", "version", "type", "source", "correlation", "causation"])
    emit([e.to_json() for e in events], as_json=ctx.as_json, human=human + (f"\n{footer}" if footer else ""))


def _decoded(items: Iterable[Any]) -> list[Any]:
    from events.items import from_item

    return [from_item(item) for item in items]


# ----------------------------------------------------------------------------- commands

def cmd_stream(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table
    from projections.audit_trail import trail
    from projections.registry import view_for_stream

    events = ctx.store().read_stream(args.stream)
    changed = trail(view_for_stream(args.stream), events)
    rows = [{**row, "changed": "; ".join(changes)}
            for row, (_, changes) in zip(_audit_rows(events), changed, strict=True)]
    emit([{**e.to_json(), "changed": changes} for e, changes in changed], as_json=ctx.as_json,
         human=table(rows, ["version", "time", "type", "source", "correlation", "causation", "changed"],
                     max_width=100))
    return 0


def cmd_search(ctx: "Context", args: argparse.Namespace) -> int:
    if args.start > args.end:
        raise DynafoldError(f"--from {args.start} is after --to {args.end}")
    page = _index(ctx).by_type(args.type, args.start, args.end, limit=args.limit, token=args.page_token)
    events = [e for e in _decoded(page.items) if args.source is None or e.source == args.source]
    footer = f"more: --page-token {page.next_token}" if page.next_token else ""
    if ctx.as_json:
        from processors.cli.output import emit

        emit({"events": [e.to_json() for e in events], "next_page_token": page.next_token}, as_json=True, human="")
    else:
        _print_events(ctx, events, footer)
    return 0


def cmd_trace(ctx: "Context", args: argparse.Namespace) -> int:
    index = _index(ctx)
    items = list(index.all_pages(lambda token: index.by_correlation(args.correlation_id, token=token)))
    events = sorted(_decoded(items), key=lambda e: (e.time, e.stream, e.version))
    _print_events(ctx, events)
    return 0


def cmd_verify(ctx: "Context", args: argparse.Namespace) -> int:
    if (args.stream is None) == (not args.all):
        raise DynafoldError("audit verify: give a STREAM or --all (not both)")
    store = ctx.store()
    if args.stream is not None:
        catalogue.stream_category(args.stream)
        reports = [store.verify_stream(args.stream)]
    else:
        reports = _verify_all(ctx, store, args.segments)
    broken = [r.broken for r in reports if r.broken is not None]
    events = sum(r.events for r in reports)
    payload = {"streams": len(reports), "events_verified": events, "ok": not broken,
               "broken": [{"stream": b.stream, "version": b.version, "problem": b.problem} for b in broken]}
    first = f"BROKEN: {len(broken)} of {len(reports)} streams; first broken link: {broken[0]}" if broken else ""
    return _verdict(ctx, payload, broken, first,
                    f"OK: {len(reports)} streams, {events} events, every hash chain and version sequence intact")


def _verdict(ctx: "Context", payload: Any, problems: list[Any], headline: str, all_clear: str) -> int:
    """A check's result: the headline and the first problems, or the all-clear; exit 1 when any."""
    from processors.cli.output import emit

    human = "\n".join([headline, *(f"  {p}" for p in problems[:_SHOWN_PROBLEMS])]) if problems else all_clear
    emit(payload, as_json=ctx.as_json, human=human)
    return 1 if problems else 0


def _verify_all(ctx: "Context", store: Any, segments: int) -> list[Any]:
    from processors.operations.progress import Progress
    from projections.view_tables import table_stats

    total = table_stats(ctx.client(), store.events_table)["items"]
    progress = Progress(total or None, tty=False if ctx.as_json else None)
    reports = []
    for report in store.verify_log(segments):  # chains, and the heads appends recorded (truncation)
        reports.append(report)
        progress.advance(max(report.events, 1))
    progress.finish()
    return reports


def _exported_items(ctx: "Context", types: list[str], start: str, end: str) -> Iterator[Any]:
    index = _index(ctx)
    per_type = [index.all_pages(lambda token, t=t: index.by_type(t, start, end, token=token)) for t in types]
    # Each index run is in time order; merge them into one time-ordered log.
    return heapq.merge(*per_type, key=lambda item: item["time"]["S"])


def cmd_export(ctx: "Context", args: argparse.Namespace) -> int:
    from events.cloudevent import to_line

    if args.start > args.end:
        raise DynafoldError(f"--from {args.start} is after --to {args.end}")
    if args.output and Path(args.output).exists() and not args.overwrite:
        raise DynafoldError(f"{args.output} exists: choose another file or pass --overwrite")
    types = [args.type] if args.type else catalogue.stored_types()
    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115 - closed below
    count = 0
    try:
        for item in _exported_items(ctx, types, args.start, args.end):
            out.write(to_line(item) + "\n")
            count += 1
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"exported {count} events to {args.output}", file=sys.stderr)
    return 0


def cmd_import(ctx: "Context", args: argparse.Namespace) -> int:
    from events.cloudevent import from_line
    from events.store import check_stored
    from processors.cli.output import emit

    path = Path(args.file)
    if not path.is_file():
        raise DynafoldError(f"no such file: {args.file}")
    by_stream: dict[str, list[tuple[int, Any]]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                stream, sequence, stored = from_line(line)
                check_stored(stream, stored)
            except DynafoldError as error:  # every line is checked before anything is appended
                raise DynafoldError(f"{args.file}:{number}: {error}") from None
            by_stream.setdefault(stream, []).append((sequence, stored))
    store = ctx.store()
    imported = already = 0
    for stream, events in by_stream.items():
        # Dedupe by event id against the stream itself: the idempotency guard expires (30 days),
        # the log does not, so a re-import after that must still append nothing twice.
        present = {item["id"]["S"] for item in store.read_items(stream)}
        for _, stored in sorted(events, key=lambda pair: pair[0]):  # the source log's order
            if stored.id in present:
                already += 1
                continue
            result = store.append_stored(stream, [stored], idempotency_key=f"import:{stored.id}")
            already += result.deduplicated
            imported += not result.deduplicated
    emit({"imported": imported, "already_present": already, "streams": len(by_stream)}, as_json=ctx.as_json,
         human=f"imported {imported} events into {len(by_stream)} streams ({already} already present)")
    return 0


def cmd_check_history(ctx: "Context", args: argparse.Namespace) -> int:
    from events.history import undecodable

    store = ctx.store()
    counted = [0]

    def counting(items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            counted[0] += 1
            yield item

    problems = list(undecodable(counting(store.scan_items(args.segments))))
    payload = {"events": counted[0], "undecodable": [dataclasses.asdict(p) for p in problems]}
    return _verdict(ctx, payload, problems, f"{len(problems)} of {counted[0]} stored events no longer decode:",
                    f"OK: all {counted[0]} stored events decode through today's models and upcasters")


# ----------------------------------------------------------------------------- registration

def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold audit ...` and `dynafold check-history` (``command`` is build_parser's helper)."""
    audit = sub.add_parser("audit", help="review the event log: streams, searches, traces, chains, export/import",
                           parents=[common])
    audits = audit.add_subparsers(dest="audit_command", required=True, parser_class=type(audit))

    p = command("stream", cmd_stream, "every event of a stream in order, with what it changed", audits)
    p.add_argument("stream")

    p = command("search", cmd_search, "events of one type in a time range (the type index), paginated", audits)
    p.add_argument("--type", required=True, type=_event_type, help="stored event type, e.g. dynafold.alerts.raised.v1")
    p.add_argument("--from", dest="start", type=moment, default=EARLIEST, metavar="TIME")
    p.add_argument("--to", dest="end", type=moment, default=LATEST, metavar="TIME")
    p.add_argument("--source", default=None, help="only events from this source")
    p.add_argument("--limit", type=_limit, default=100, help="index entries per page (default 100)")
    p.add_argument("--page-token", default=None, help="continue where the previous page stopped")

    p = command("trace", cmd_trace, "every event one request caused, across streams, in time order", audits)
    p.add_argument("correlation_id")

    p = command("verify", cmd_verify, "check hash chains and version sequences; name the first broken link", audits)
    p.add_argument("stream", nargs="?", default=None)
    p.add_argument("--all", action="store_true", help="every stream (a parallel scan, with progress)")
    p.add_argument("--segments", type=_segments, default=4)

    p = command("export", cmd_export, "write events as CloudEvents JSON Lines (time order)", audits)
    p.add_argument("--from", dest="start", type=moment, default=EARLIEST, metavar="TIME")
    p.add_argument("--to", dest="end", type=moment, default=LATEST, metavar="TIME")
    p.add_argument("--type", type=_event_type, default=None, help="only this stored type")
    p.add_argument("--output", "-o", default=None, help="file to write (default stdout)")
    p.add_argument("--overwrite", action="store_true")

    p = command("import", cmd_import, "append a CloudEvents JSON Lines file into this store (idempotent)", audits)
    p.add_argument("file")

    p = command("check-history", cmd_check_history,
                "decode every stored event through today's models and upcasters; report what no longer parses")
    p.add_argument("--segments", type=_segments, default=4)
