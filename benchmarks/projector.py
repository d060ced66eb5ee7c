"""Projector throughput and cost on a 10k-event mixed history (issues: projections, 21 §2).

Goals: the batch projector moves >= 1.5x the events/s of a naive projector (one conditional write
per event, in order) with <= 0.05 Query calls per event; DynamoDB writes per event <= 1.0 mixed and
<= 0.2 when rows get 5+ events per batch; decode + validate + fold <= 50 us CPU per event; cold
import of the projector <= 1.3x boto3 + Powertools + pydantic.

The naive projector is given every advantage but batching: it reads nothing (each stream's state
is kept in memory, as if every load were free) and writes each event's change with one request,
conditional on the version before it, as ``ViewStore.save`` writes it (a row's conditional put, or
a multi-row change's transaction). Both project the same history, delivered in the same order, into
databases of their own on the one engine, in alternating rounds. The live projector also seals each
stream's checkpoint (issue 21 §1), a duty the naive one has not: it is measured apart, as a third.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from benchmarks.common import Bench, engine, fresh, report
from events.envelope import NewEvent
from events.items import from_item
from events.store import EventStore
from projections.batch import BatchProjector, Entry
from projections.registry import VIEWS, view_for_stream
from projections.view import stream_key
from projections.ports import Loaded, without_none
from projections.view_store import ViewStore
from processors.local.stream_runner import settings_from_template
from processors.local.tables import local_tables
from processors.services.reactor import Reactor
from projections.reactor.settings import AlertSettings

BATCH = settings_from_template("ProjectorFunction").batch_size  # the template's BatchSize (100)
REACTOR_BATCH = settings_from_template("ReactorFunction").batch_size  # 25
STOREFRONT = "https://storefront.example/stock"  # broadcasts on: each count change appends two events


def _sku(sku: str, i: int) -> NewEvent:
    kind = i % 5
    if kind == 0:
        return NewEvent("dynafold.inventory.physical_count_set.v1", {"sku": sku, "physical": 100 + i})
    if kind == 1:
        return NewEvent("dynafold.inventory.buffer_set.v1", {"sku": sku, "buffer": i % 7})
    if kind == 4 and i % 20 == 4:
        return NewEvent("dynafold.inventory.return_recorded.v1",
                        {"sku": sku, "quantity": 1, "disposition": "SELLABLE", "restocked": True})
    return NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": -1, "reason": "order"})


def _order(order: str, i: int) -> NewEvent:
    errors = [{"error_hash": f"h{j}", "rule": "discount_on_tuk_item", "message": "TUK item has discount"}
              for j in range(i % 3)]
    return NewEvent("dynafold.orders.validated.v1", {"order_id": order, "order_number": "SO-1", "errors": errors})


def _delivery(stream: str, i: int) -> NewEvent:
    sender, message = stream.split(":")[1:]
    if i == 0:
        return NewEvent("dynafold.delivery.message_received.v1",
                        {"sender_id": sender, "message_id": message, "target_url": "https://example.com/h"})
    return NewEvent("dynafold.delivery.attempted.v1", {"attempt": i, "success": False, "category": "SERVER_ERROR",
                                                       "retryable": True, "status_code": 503,
                                                       "response_time_ms": 20.0})


def build_history(store: EventStore, events: int, per_stream: int, seed: int = 7) -> int:
    """Append `events` events in 25-event appends over streams of `per_stream` events each."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    written, n = 0, 0
    while written < events:
        kind = rng.choice(["sku", "sku", "order", "delivery"])
        stream = {"sku": f"sku:S{n}", "order": f"order:O{n}", "delivery": f"delivery:u{n % 9}:m{n}"}[kind]
        make = {"sku": lambda i, s=stream: _sku(stream_key(s), i),
                "order": lambda i, s=stream: _order(stream_key(s), i),
                "delivery": lambda i, s=stream: _delivery(s, i)}[kind]
        count = min(per_stream, events - written)
        for first in range(0, count, 25):
            chunk = [make(i) for i in range(first, min(count, first + 25))]
            chunk = [NewEvent(e.type, e.data, time=start + timedelta(milliseconds=written + j))
                     for j, e in enumerate(chunk)]
            store.append(stream, chunk)
            written += len(chunk)
        n += 1
    return written


def _entries(store: EventStore, interleave: bool, rng: random.Random) -> list[Entry]:
    """The log as a shard delivers it; the same history and seed give the same order."""
    items = list(store.scan_items(segments=4))
    events = [from_item(item) for item in items]
    by_stream: dict[str, list] = {}
    for event in events:
        by_stream.setdefault(event.stream, []).append(event)
    streams = [by_stream[name] for name in sorted(by_stream)]
    ordered = []
    if interleave:  # the shard interleaves streams; each keeps its order
        cursors = [iter(s) for s in streams]
        while cursors:
            cursor = rng.choice(cursors)
            head = next(cursor, None)
            if head is None:
                cursors.remove(cursor)
            else:
                ordered.append(head)
    else:  # bursts: each stream's events arrive together
        ordered = [e for s in streams for e in s]
    return [Entry(str(10**20 + i), e.stream, e, inserted=True) for i, e in enumerate(ordered)]  # appends: INSERTs


_WRITE_CALLS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchExecuteStatement",
                "BatchWriteItem"}
_READ_CALLS = {"GetItem", "BatchGetItem", "Query", "ExecuteStatement"}


class NaiveProjector:
    """One conditional write per event, in delivery order, and no reads: each stream's state is
    kept in memory (as if every load were free). The baseline the batch projector is measured by."""

    def __init__(self, store: ViewStore) -> None:
        self._store = store
        self._known: dict[str, Loaded[Any]] = {}

    def project(self, entries: list[Entry]) -> int:
        """Items written."""
        written = 0
        for entry in entries:
            event = entry.event
            view = view_for_stream(entry.stream)
            if event is None or view is None:
                raise RuntimeError(f"{entry.stream}: the naive projector has no event or view to fold")
            key = stream_key(entry.stream)
            loaded = self._known.get(entry.stream) or Loaded(view.initial(key), 0, {})
            if event.version <= loaded.version:
                continue
            state = view.apply(loaded.state, event)
            written += self._store.save(view, entry.stream, key, loaded, state, event.version)
            rows = {sort_key: without_none(row) for sort_key, row in view.rows(state).items()}
            self._known[entry.stream] = Loaded(state, event.version, rows)
        return written


@dataclass
class Projection:
    """One system projecting into its own database: its time, items written and requests by call."""

    bench: Bench
    project: Callable[[list[Entry]], int]
    seconds: float = 0.0
    written: int = 0
    calls: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.bench.client.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: self.calls.update([model.name]))

    def run(self, entries: list[Entry]) -> None:
        started = time.perf_counter()
        self.written += self.project(entries)
        self.seconds += time.perf_counter() - started

    def per_event(self, calls: set[str], events: int) -> float:
        return sum(self.calls[name] for name in calls) / events


def _batch_projection(bench: Bench, store: EventStore, *, sealing: bool = False) -> Projection:
    """The batch projector; ``sealing`` as the live one is built, also sealing streams' checkpoints."""
    tables = local_tables("bench-", versions={})
    projector = BatchProjector(ViewStore(bench.client, tables.views), store.read_stream, VIEWS,
                               seal=store.seal if sealing else None)

    def project(entries: list[Entry]) -> int:
        written = 0
        for first in range(0, len(entries), BATCH):
            outcome = projector.project(entries[first:first + BATCH])
            if outcome.failed_sequence_numbers:  # a timing of failed projections would mean nothing
                raise RuntimeError(f"projection failed at records {outcome.failed_sequence_numbers}")
            written += outcome.total("rows_written")
        return written

    return Projection(bench, project)


def _naive_projection(bench: Bench) -> Projection:
    return Projection(bench, NaiveProjector(ViewStore(bench.client, local_tables("bench-", versions={}).views)).project)


def _alternating(systems: list[Projection], entries: list[list[Entry]], rounds: int) -> None:
    """Each system projects its own copy of the history, a slice per round, taking turns (and turns
    about who goes first), so the engine's warm-up and its slowing as tables fill weigh alike."""
    size = -(-len(entries[0]) // rounds)
    for index in range(rounds):
        turn = range(len(systems)) if index % 2 == 0 else reversed(range(len(systems)))
        for which in turn:
            systems[which].run(entries[which][index * size:(index + 1) * size])


def _react(bench: Bench, store: EventStore, entries: list[Entry]) -> float:
    """Seconds the reactor takes over the entries in the template's batches, views caught up (the
    projector ran first), storefront broadcasts on; delivery jobs are not sent (no queue here)."""
    tables = local_tables("bench-", versions={})
    reactor = Reactor(store, ViewStore(bench.client, tables.views), AlertSettings(), storefront_url=STOREFRONT)
    flushed = io.StringIO()  # Powertools flushes its metrics (EMF lines) to stdout, as on Lambda: kept off the report
    started = time.perf_counter()
    with contextlib.redirect_stdout(flushed):
        for first in range(0, len(entries), REACTOR_BATCH):
            for entry in entries[first:first + REACTOR_BATCH]:
                if entry.event is not None:
                    reactor.react(entry.event)
    return time.perf_counter() - started



def _cpu_us_per_event(bench: Bench, store: EventStore) -> float:
    items = list(store.scan_items(segments=1))
    started = time.process_time()
    states: dict[str, object] = {}
    for item in items:
        event = from_item(item)
        view = view_for_stream(event.stream)
        if view is None:
            raise LookupError(f"{event.stream}: no view folds this stream")
        state = states.get(event.stream) or view.initial(stream_key(event.stream))
        states[event.stream] = view.apply(state, event)
    return (time.process_time() - started) / len(items) * 1e6


def _import_seconds(statement: str, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)  # noqa: S603 - our interpreter, our statement
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _history(endpoint_url: str, events: int, per_stream: int) -> tuple[Bench, EventStore, int]:
    bench = fresh(endpoint_url)
    store = EventStore.over(bench.client, bench.names)
    return bench, store, build_history(store, events, per_stream=per_stream)


def run(endpoint_url: str, events: int = 10_000, rounds: int = 10) -> dict[str, float]:
    ours, our_store, appended = _history(endpoint_url, events, per_stream=4)
    live, live_store, _ = _history(endpoint_url, events, per_stream=4)
    theirs, their_store, _ = _history(endpoint_url, events, per_stream=4)
    batch, naive = _batch_projection(ours, our_store), _naive_projection(theirs)
    sealing = _batch_projection(live, live_store, sealing=True)
    _alternating([batch, sealing, naive], [_entries(store, interleave=True, rng=random.Random(11))  # noqa: S311
                                           for store in (our_store, live_store, their_store)], rounds)
    react_seconds = _react(ours, our_store, _entries(our_store, interleave=True, rng=random.Random(11)))  # noqa: S311
    cpu = _cpu_us_per_event(ours, our_store)

    bursty, bursty_store, burst_events = _history(endpoint_url, events // 4, per_stream=10)
    burst = _batch_projection(bursty, bursty_store)
    burst.run(_entries(bursty_store, interleave=False, rng=random.Random(11)))  # noqa: S311 - a workload

    baseline = _import_seconds("import boto3, aws_lambda_powertools, pydantic")
    projector_import = _import_seconds("import processors.functions.projector")
    result = {
        "events": appended, "projector_events_per_s": appended / batch.seconds,
        "naive_events_per_s": appended / naive.seconds, "throughput_ratio": naive.seconds / batch.seconds,
        "sealing_events_per_s": appended / sealing.seconds, "sealing_ratio": naive.seconds / sealing.seconds,
        "query_calls_per_event": batch.per_event({"Query"}, appended),
        "read_requests_per_event": batch.per_event(_READ_CALLS, appended),
        "writes_per_event_mixed": batch.written / appended,
        "writes_per_event_bursty": burst.written / burst_events, "cpu_us_per_event": cpu,
        "write_requests_per_event_mixed": batch.per_event(_WRITE_CALLS, appended),
        "write_requests_per_event_naive": naive.per_event(_WRITE_CALLS, appended),
        "write_requests_per_event_bursty": burst.per_event(_WRITE_CALLS, burst_events),
        "import_ratio": projector_import / baseline,
        # What `dynafold cost --rate R` weighs against the events a stream shard carries
        # (processors/operations/measured.py records them with the date).
        "projector_ms_per_batch": sealing.seconds * 1e3 / (appended / BATCH),  # as the live one runs
        "reactor_ms_per_batch": react_seconds * 1e3 / (appended / REACTOR_BATCH),
    }
    report(f"projector ({appended} mixed events; {burst_events} in bursts of 10 per stream)", [
        ("batch projector", f"{result['projector_events_per_s']:.0f} events/s"),
        ("naive projector (a write per event, no reads)", f"{result['naive_events_per_s']:.0f} events/s"),
        ("batch / naive", f"{result['throughput_ratio']:.2f}x   (goal >= 1.5x)"),
        ("batch projector sealing checkpoints too, as the live one does",
         f"{result['sealing_events_per_s']:.0f} events/s = {result['sealing_ratio']:.2f}x naive"),
        ("Query calls per event", f"{result['query_calls_per_event']:.3f}   (goal <= 0.05)"),
        ("read requests per event (Get, BatchGet, Query, ExecuteStatement)",
         f"{result['read_requests_per_event']:.3f}"),
        ("items written per event, mixed", f"{result['writes_per_event_mixed']:.2f}   (goal <= 1.0)"),
        ("items written per event, 10-event bursts", f"{result['writes_per_event_bursty']:.2f}   (goal <= 0.2)"),
        ("write requests per event, mixed (naive)", f"{result['write_requests_per_event_mixed']:.3f} "
                                                    f"({result['write_requests_per_event_naive']:.3f})"),
        ("write requests per event, 10-event bursts", f"{result['write_requests_per_event_bursty']:.3f}"),
        ("decode + validate + fold", f"{cpu:.1f} us CPU/event   (goal <= 50)"),
        ("cold import projector / baseline", f"{projector_import * 1e3:.0f} ms / {baseline * 1e3:.0f} ms = "
                                             f"{result['import_ratio']:.2f}x   (goal <= 1.3x)"),
        (f"projector, one batch of {BATCH}", f"{result['projector_ms_per_batch']:.0f} ms"),
        (f"reactor, one batch of {REACTOR_BATCH}", f"{result['reactor_ms_per_batch']:.0f} ms"),
        *_per_shard(result),
    ])
    return result


def _per_shard(result: dict[str, float]) -> list[tuple[str, str]]:
    """The measured batch times against the events a shard carries at 10,000 events/s, as ratios."""
    from processors.operations.partitions import live_path_at

    rows = []
    path = live_path_at(10_000, measured={"ProjectorFunction": result["projector_ms_per_batch"],
                                          "ReactorFunction": result["reactor_ms_per_batch"]})
    for consumer in path.consumers:
        rows.append((f"{consumer.function} per shard at 10,000 events/s",
                     f"{consumer.capacity:.0f} / {path.events_per_shard:.0f} events/s = "
                     f"{consumer.capacity / path.events_per_shard:.2f}x at ParallelizationFactor {consumer.factor} "
                     f"(needs {consumer.factor_needed})"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    with engine(args.endpoint_url) as url:
        run(url, args.events)


if __name__ == "__main__":
    main()
