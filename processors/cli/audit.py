"""`dynafold audit stream|search|trace|verify|export|import` and `dynafold check-history`.

Audits read the event table and never change it; `audit import` appends into another store,
idempotently (one key per event id), keeping ids, data and times byte for byte, after checking
the export's own hash chain and that no event it carries differs from one stored with its id.
`audit verify --file` checks an export offline (see ``events.export_chain`` for what that proves).
Search and trace are served by the table's indexes (by-type-shard-time, a kept by-type-time,
by-correlation, by-id), never by a scan; trace answers through the composition root's read service,
as `GET /trace/{id}` does.
Exit 0 ok, 1 a broken chain / undecodable event / refused import, 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from events import catalogue
from events.errors import DynafoldError, NotFound
from processors.cli.context import EXIT_FAILED, AddCommand, Context, Interrupted, existing_stream, moment


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


def _decoded(ctx: "Context", items: Iterable[Any]) -> list[Any]:
    """Stored items as people see them: personal values revealed, or [erased]."""
    from events.items import from_item

    reveal = ctx.store().revealer.reveal
    return [reveal(from_item(item)) for item in items]


# ----------------------------------------------------------------------------- commands

def cmd_stream(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table
    from projections.audit_trail import trail
    from projections.registry import view_for_stream

    events = existing_stream(ctx.store().read_stream(args.stream), args.stream)
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
    events = [e for e in _decoded(ctx, page.items) if args.source is None or e.source == args.source]
    footer = f"more: --page-token {page.next_token}" if page.next_token else ""
    if ctx.as_json:
        from processors.cli.output import emit

        emit({"events": [e.to_json() for e in events], "next_page_token": page.next_token}, as_json=True, human="")
    else:
        _print_events(ctx, events, footer)
    return 0


def cmd_trace(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.services.event_trace import check_trace_id

    check_trace_id(args.id)  # an empty id is bad input before any table is asked
    answer = ctx.root().event_trace(args.id)  # NotFound: exit 4, as the route's 404
    emit(answer.to_dict(), as_json=ctx.as_json, human=answer.text())
    return 0


def cmd_verify(ctx: "Context", args: argparse.Namespace) -> int:
    if args.file is not None:
        if args.stream is not None or args.all:
            raise DynafoldError("audit verify: give a STREAM, --all or --file (one of them)")
        return _verify_file(ctx, args)
    if args.heads_digest is not None or args.partial:
        raise DynafoldError("audit verify: --heads-digest and --partial go with --file")
    if (args.stream is None) == (not args.all):
        raise DynafoldError("audit verify: give a STREAM or --all (not both)")
    store = ctx.store()
    if args.stream is not None:
        catalogue.stream_category(args.stream)
        reports = [store.verify_stream(args.stream, _applied_by_view(ctx, args.stream))]
        if not reports[0].events and reports[0].broken is None:  # nothing to verify is not "intact"
            raise NotFound(f"stream {args.stream!r} (it has no events)")
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
    # Chains, each against its sealed checkpoint, an earlier release's head and its rows (truncation).
    for report in store.verify_log(segments, also=_applied_by_views(ctx, segments)):
        reports.append(report)
        progress.advance(max(report.events, 1))
    progress.finish()
    return reports


def _applied_by_view(ctx: "Context", stream: str) -> list[Any]:
    """The version the stream's view rows record as applied, as a witness (events.checkpoints)."""
    from events.chain import Witness
    from projections.registry import view_for_stream
    from projections.view import stream_key
    from projections.view_store import ViewStore

    view = view_for_stream(stream)
    if view is None:
        return []
    try:
        loaded = ViewStore(ctx.client(), ctx.view_tables().views).load(view, stream_key(stream))
    except ctx.client().exceptions.ResourceNotFoundException:  # no view tables here: no such witness
        return []
    return [Witness(loaded.stored_version, None, f"{view.name} view")] if loaded.stored_version else []


def _applied_by_views(ctx: "Context", segments: int) -> dict[str, list[Any]]:
    from events.chain import Witness
    from projections.view_tables import applied_versions

    applied = applied_versions(ctx.client(), dict(ctx.view_tables().views), segments)
    return {stream: [Witness(version, None, f"{family} view")] for stream, (version, family) in applied.items()}


def _exported_items(ctx: "Context", types: list[str], start: str, end: str) -> Iterator[Any]:
    index = _index(ctx)
    per_type = [index.all_pages(lambda token, t=t: index.by_type(t, start, end, token=token)) for t in types]
    # Each index run is in time order; merge them into one time-ordered log.
    return heapq.merge(*per_type, key=lambda item: item["time"]["S"])


def cmd_export(ctx: "Context", args: argparse.Namespace) -> int:
    from events.cloudevent import to_line
    from events.export_chain import heads_digest

    if args.start > args.end:
        raise DynafoldError(f"--from {args.start} is after --to {args.end}")
    if args.output and Path(args.output).exists() and not args.overwrite:
        raise DynafoldError(f"{args.output} exists: choose another file or pass --overwrite")
    types = [args.type] if args.type else catalogue.stored_types()
    heads: dict[str, tuple[int, str]] = {}

    def lines() -> Iterator[str]:
        for item in _exported_items(ctx, types, args.start, args.end):
            stream, version = item["stream"]["S"], int(item["version"]["N"])
            if version > heads.get(stream, (0, ""))[0]:
                heads[stream] = (version, item["hash"]["S"])
            yield to_line(item)

    count = 0
    if not args.output:
        for line in lines():
            sys.stdout.write(line + "\n")
            count += 1
    else:
        # Into a temporary file beside the target, renamed over it only once every event is written:
        # a failed export (the stack down, Ctrl-C) leaves no file behind to block the retry.
        target = Path(args.output)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                for line in lines():
                    out.write(line + "\n")
                    count += 1
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    # The digest is the export's stated head: kept apart from the file, it is what later proves no
    # stream's tail was cut and no chain recomputed (`audit verify --file F --heads-digest D`).
    digest = heads_digest(heads)
    if ctx.as_json and args.output:  # stdout is free for the one JSON document
        from processors.cli.output import emit

        emit({"exported": count, "streams": len(heads), "output": args.output, "heads_digest": digest},
             as_json=True, human="")
        return 0
    print(f"exported {count} events of {len(heads)} streams" + (f" to {args.output}" if args.output else "")
          + f"; heads digest {digest} (keep it apart from the file: "
          "`audit verify --file FILE --heads-digest DIGEST` checks it)", file=sys.stderr)
    return 0


def _read_export(file: str) -> list[tuple[int, Any]]:
    """(line number, ExportedEvent) of every line of an export; a line that is not one is bad
    input naming the line, before anything is done with the others."""
    from events.cloudevent import from_line
    from events.store import check_stored

    path = Path(file)
    if not path.is_file():
        raise DynafoldError(f"no such file: {file}")
    exported = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = from_line(line)
                check_stored(event.stream, event.stored)
            except DynafoldError as error:
                raise DynafoldError(f"{file}:{number}: {error}") from None
            exported.append((number, event))
    return exported


def _chain_problems(file: str, exported: list[tuple[int, Any]], partial: bool,
                    stated_digest: str | None) -> tuple[Any, list[str]]:
    """The export's chain report and what refuses it: a contradicted hash or link, a gap (unless
    ``partial``: the export was filtered), heads differing from the stated digest."""
    from events.export_chain import check_export

    report = check_export(exported)
    problems = [f"{file}: {p}" for p in report.broken]
    if not partial:
        problems += [f"{file}: {p} (an unfiltered export has every link; pass --partial for one taken with "
                     "--from/--to/--type)" for p in report.gaps]
    if stated_digest is not None and stated_digest != report.heads_digest:
        problems.append(f"{file}: its heads digest {report.heads_digest} is not the stated {stated_digest}: a "
                        "stream's tail was cut, a stream left out or added, or a chain recomputed")
    return report, problems


def _verify_file(ctx: "Context", args: argparse.Namespace) -> int:
    stated = _digest(args.heads_digest)
    exported = _read_export(args.file)
    report, problems = _chain_problems(args.file, exported, args.partial, stated)
    proved = ["every line's content matches its hash",
              "every link between consecutive versions of a stream in the file holds",
              "every stream that starts at version 1 starts from the genesis hash"]
    unproved = [f"{len(report.gaps)} link(s) to events not in the file"] if report.gaps else []
    if args.heads_digest is None:
        unproved += ["that nothing was cut from a stream's end, no stream left out and no chain recomputed: "
                     "give the heads digest `audit export` printed (--heads-digest)"]
    else:
        proved.append("every stream's last version and hash are the stated heads (nothing cut off, left out, "
                      "added or recomputed)")
    payload = {"file": args.file, "streams": report.streams, "events_verified": report.events, "ok": not problems,
               "broken": [p.to_json() for p in report.broken], "gaps": [p.to_json() for p in report.gaps],
               "heads_digest": report.heads_digest,
               "proves": proved if not problems else [], "does_not_prove": unproved}
    headline = f"BROKEN: {args.file}: {len(problems)} problem(s)"
    all_clear = (f"OK: {report.events} events of {report.streams} streams in {args.file}: " + "; ".join(proved)
                 + f". Heads digest {report.heads_digest}."
                 + (f" Not proved: {'; '.join(unproved)}." if unproved else ""))
    return _verdict(ctx, payload, problems, headline, all_clear)


def cmd_import(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    stated = _digest(args.heads_digest)
    exported = _read_export(args.file)
    _, problems = _chain_problems(args.file, exported, args.partial, stated)
    by_stream: dict[str, list[Any]] = {}
    for _, event in exported:
        by_stream.setdefault(event.stream, []).append(event)
    store = ctx.store()
    # Dedupe by event id against the stream itself: the idempotency guard expires (30 days),
    # the log does not, so a re-import after that must still append nothing twice. An id already
    # stored with other content is a forgery or another log's event: refused, never "present".
    present: dict[str, set[str]] = {}
    for stream, events in by_stream.items():
        stored = {item["id"]["S"]: item for item in store.read_items(stream)}
        present[stream] = set(stored)
        problems += [f"{args.file}: event {event.stored.id} ({stream} v{event.version}) differs from the stored "
                     f"one with that id: {difference}"
                     for event in events if event.stored.id in stored
                     for difference in [_difference(stored[event.stored.id], event.stored)] if difference]
    if problems:  # checked in full before the first append: a refused file writes nothing
        if ctx.as_json:
            emit({"imported": 0, "already_present": 0, "streams": len(by_stream), "refused": problems},
                 as_json=True, human="")
        print(f"dynafold: refused {args.file}, nothing imported:", file=sys.stderr)
        for problem in problems[:_SHOWN_PROBLEMS]:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILED
    imported = already = 0
    total = sum(len(events) for events in by_stream.values())
    try:
        for stream, events in by_stream.items():
            for event in sorted(events, key=lambda e: e.version):  # the source log's order
                if event.stored.id in present[stream]:
                    already += 1
                    continue
                result = store.append_stored(stream, [event.stored], idempotency_key=f"import:{event.stored.id}")
                already += result.deduplicated
                imported += not result.deduplicated
    except KeyboardInterrupt:  # each event is appended once: the same command skips what is in
        raise Interrupted(f"event {imported + already:,} of {total:,} from {args.file} ({imported:,} imported "
                          "so far)") from None
    emit({"imported": imported, "already_present": already, "streams": len(by_stream)}, as_json=ctx.as_json,
         human=f"imported {imported} events into {len(by_stream)} streams ({already} already present)")
    return 0


_COMPARED = (("type", "type"), ("data", "data_text"), ("source", "source"), ("time", "time_text"),
             ("correlation_id", "correlation_id"), ("causation_id", "causation_id"))


def _difference(item: Any, stored: Any) -> str:
    """What differs between a stored item and an imported event with the same id ('' if nothing)."""
    differing = [name for name, attribute in _COMPARED
                 if item.get(name, {}).get("S") != getattr(stored, attribute)]
    return ", ".join(differing)


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

def _export_checks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partial", action="store_true",
                        help="the export was filtered (--from/--to/--type): links to events left out are not "
                             "refused")
    parser.add_argument("--heads-digest", default=None, metavar="DIGEST",
                        help="the heads digest `audit export` printed: proves no stream was cut, left out or "
                             "recomputed")


def _digest(text: str | None) -> str | None:
    """The stated heads digest, checked when the command runs (so a placeholder still parses)."""
    if text is None:
        return None
    lowered = text.strip().lower()
    if len(lowered) != 64 or any(c not in "0123456789abcdef" for c in lowered):
        raise DynafoldError(f"--heads-digest: expected the 64 hex digits `audit export` printed, got {text[:80]!r}")
    return lowered


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

    p = command("trace", cmd_trace, "what an event caused and what caused it (an event id), or what one request "
                "caused (a correlation id), in time order", audits)
    p.add_argument("id", help="an event id or a correlation id")

    p = command("verify", cmd_verify, "check hash chains and version sequences; name the first broken link", audits)
    p.add_argument("stream", nargs="?", default=None)
    p.add_argument("--all", action="store_true", help="every stream (a parallel scan, with progress)")
    p.add_argument("--segments", type=_segments, default=4)
    p.add_argument("--file", default=None, help="an export (`audit export`), verified offline from its own hashes")
    _export_checks(p)

    p = command("export", cmd_export, "write events as CloudEvents JSON Lines (time order)", audits)
    p.add_argument("--from", dest="start", type=moment, default=EARLIEST, metavar="TIME")
    p.add_argument("--to", dest="end", type=moment, default=LATEST, metavar="TIME")
    p.add_argument("--type", type=_event_type, default=None, help="only this stored type")
    p.add_argument("--output", "-o", default=None, help="file to write (default stdout)")
    p.add_argument("--overwrite", action="store_true")

    p = command("import", cmd_import, "verify a CloudEvents JSON Lines export, then append it into this store "
                "(idempotent)", audits)
    p.add_argument("file")
    _export_checks(p)

    p = command("check-history", cmd_check_history,
                "decode every stored event through today's models and upcasters; report what no longer parses")
    p.add_argument("--segments", type=_segments, default=4)
