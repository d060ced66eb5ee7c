"""`dynafold append|read|types`: write one event, read a stream, list the event catalogue."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from events import catalogue
from events.envelope import NewEvent, RecordedEvent, format_time
from events.errors import DynafoldError
from processors.cli.context import EXIT_OK, AddCommand, Context, existing_stream


def _event_rows(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    return [
        {
            "stream": e.stream, "version": e.version, "time": format_time(e.time), "type": e.type,
            "id": e.id, "data": e.data.model_dump(mode="json"),
        }
        for e in events
    ]


def _print_events(ctx: Context, events: Sequence[RecordedEvent]) -> None:
    from processors.cli.output import emit, table

    emit([e.to_json() for e in events], as_json=ctx.as_json,
         human=table(_event_rows(events), ["stream", "version", "time", "type", "data"], max_width=70))


def cmd_types(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table

    schemas = catalogue.json_schemas()
    rows = [{"type": s["type"], "stream": s["stream"], "fields": ", ".join(s["schema"].get("properties", {})),
             "description": s["description"]} for s in schemas]
    emit(schemas, as_json=ctx.as_json, human=table(rows, ["type", "stream", "fields", "description"], max_width=60))
    return EXIT_OK


def cmd_append(ctx: Context, args: argparse.Namespace) -> int:
    from events.store import parse_expected_version
    from processors.cli.output import emit

    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as error:
        raise DynafoldError(f"--data is not valid JSON: {error.msg} at position {error.pos}") from None
    except RecursionError:
        raise DynafoldError("--data is nested too deeply to be event data") from None
    event = NewEvent(type=args.type, data=data, source=args.source, correlation_id=args.correlation_id)
    result = ctx.store().append(args.stream, [event], parse_expected_version(args.expected_version),
                                idempotency_key=args.idempotency_key)
    payload = {"stream": result.stream, "versions": list(result.versions), "event_ids": list(result.event_ids),
               "deduplicated": result.deduplicated}
    human = f"{result.stream} v{result.first_version} {result.event_ids[0]}" + (
        " (already appended under this idempotency key)" if result.deduplicated else "")
    emit(payload, as_json=ctx.as_json, human=human)
    return EXIT_OK


def cmd_read(ctx: Context, args: argparse.Namespace) -> int:
    if args.from_version < 1:
        raise DynafoldError(f"--from must be >= 1, got {args.from_version}")
    events = ctx.store().read_stream(args.stream, from_version=args.from_version)
    if args.from_version == 1:
        existing_stream(events, args.stream)
    _print_events(ctx, events)
    return EXIT_OK


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    append = command("append", cmd_append, "append one event to a stream")
    append.add_argument("stream", help="stream id, e.g. sku:PROD-001")
    append.add_argument("type", help="event type, e.g. dynafold.inventory.buffer_set.v1 (see `dynafold types`)")
    append.add_argument("--data", required=True, help="event data as a JSON object")
    append.add_argument("--expected-version", default="any", help="N, none or any (default any)")
    append.add_argument("--idempotency-key", default=None)
    append.add_argument("--source", default="urn:dynafold:cli")
    append.add_argument("--correlation-id", default=None)

    read = command("read", cmd_read, "print a stream's events in order")
    read.add_argument("stream")
    read.add_argument("--from", dest="from_version", type=int, default=1, help="first version (default 1)")

    command("types", cmd_types, "every event type with its JSON Schema")
