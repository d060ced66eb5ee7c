"""`dynafold demo` (what `make run` calls): engine, tables, sample traffic, then what was built."""

from __future__ import annotations

import contextlib
from typing import Any

from processors.output import emit, table
from processors.sample_traffic import sample_history
from processors.tables import create_tables


def run_demo(ctx: Any) -> int:
    from processors.local_engine import LocalEngine

    with contextlib.ExitStack() as stack:
        if ctx.endpoint_url is None:
            engine = stack.enter_context(LocalEngine(in_memory=True))
            ctx.endpoint_url = engine.endpoint_url
            _say(ctx, f"started DynamoDB Local on {engine.endpoint_url} (in memory)")
        names = ctx.tables()
        created = create_tables(ctx.client(), names)
        _say(ctx, f"tables from template.yaml: {', '.join(names.names.values())} ({len(created)} created)")
        store = ctx.store()
        results = []
        for append in sample_history():
            result = store.append(append.stream, list(append.events), idempotency_key=append.idempotency_key)
            results.append(result)
        streams = sorted({r.stream for r in results})
        _say(ctx, f"appended {sum(len(r.event_ids) for r in results)} events to {len(streams)} streams")
        history = {stream: store.read_stream(stream) for stream in streams}
        chains = {stream: store.verify_stream(stream) for stream in streams}
        rows = [
            {"stream": s, "version": e.version, "time": e.time.strftime("%H:%M:%S"),
             "type": e.type.removeprefix("dynafold."), "hash": e.hash[:12]}
            for s, events in history.items() for e in events
        ]
        summary = {
            "streams": {s: [e.to_json() for e in events] for s, events in history.items()},
            "chains_ok": all(c.ok for c in chains.values()),
        }
        human = table(rows, ["stream", "version", "time", "type", "hash"]) + "\n\nhash chains: " + (
            "all intact" if summary["chains_ok"] else "BROKEN: " + "; ".join(
                str(c.broken) for c in chains.values() if c.broken))
        emit(summary, as_json=ctx.as_json, human=human)
        return 0 if summary["chains_ok"] else 1


def _say(ctx: Any, line: str) -> None:
    if not ctx.as_json:
        print(line, flush=True)
