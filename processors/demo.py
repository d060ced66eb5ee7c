"""`dynafold demo` (what `make run` calls): engine, tables, sample traffic, the stream consumers, the views.

The sample history goes into the event table; the same projector and reactor handlers that run
on Lambda then read it from the real DynamoDB Local stream (through the local stream runner),
and the demo ends by printing the four views they built and whether every hash chain holds.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from processors.output import emit
from processors.sample_traffic import sample_history
from processors.tables import create_tables


def run_demo(ctx: Any) -> int:
    from processors.lambda_logs import lambda_logs
    from processors.local_engine import LocalEngine
    from processors.local_stack import LOGGER_NAMES, LocalStack
    from processors.views_report import collect, render
    from projections.queries import ViewQueries

    with contextlib.ExitStack() as stack:
        if ctx.endpoint_url is None:
            engine = stack.enter_context(LocalEngine(in_memory=True))
            ctx.endpoint_url = engine.endpoint_url
            _say(ctx, f"started DynamoDB Local on {engine.endpoint_url} (in memory)")
        names = ctx.tables()
        created = create_tables(ctx.client(), names)
        _say(ctx, f"tables from template.yaml: {len(names.names)} ({len(created)} created)")
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dynafold-demo-")))
        logs = stack.enter_context(lambda_logs(Path(".dynafold") / "logs", LOGGER_NAMES))
        local = LocalStack(ctx.endpoint_url, ctx.view_tables(), state_dir, logs=logs)
        results = [local.store.append(a.stream, list(a.events), idempotency_key=a.idempotency_key)
                   for a in sample_history()]
        streams = sorted({r.stream for r in results})
        _say(ctx, f"appended {sum(len(r.event_ids) for r in results)} events to {len(streams)} streams")
        delivered = local.drain()
        _say(ctx, f"projector and reactor read {delivered} stream records (batches as the template's "
                  f"event source mappings set them; their JSON logs and EMF metrics: {logs.directory}/)")
        chains = [local.store.verify_stream(stream) for stream in _all_streams(local)]
        views = collect(ViewQueries(local.client, local.tables.views))
        broken = [str(c.broken) for c in chains if c.broken]
        summary = {"views": views, "streams": len(chains), "chains_ok": not broken}
        human = render(views) + f"\n\nhash chains: {len(chains)} streams, " + (
            "all intact" if not broken else "BROKEN: " + "; ".join(broken))
        emit(summary, as_json=ctx.as_json, human=human)
        return 0 if not broken else 1


def _all_streams(local: Any) -> list[str]:
    """Every stream in the log, reactions (alerts) included."""
    return sorted({item["stream"]["S"] for item in local.store.scan_items(segments=1)})


def _say(ctx: Any, line: str) -> None:
    if not ctx.as_json:
        print(line, flush=True)
