"""Projector throughput and cost on a 10k-event mixed history (issue: projections).

Goals: projector events/s >= 1.5x the engine's raw sequential conditional puts/s; DynamoDB
writes per event <= 1.0 mixed and <= 0.2 when rows get 5+ events per batch; decode + validate
+ fold <= 50 us CPU per event; cold import of the projector <= 1.3x boto3 + Powertools + pydantic.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from benchmarks.common import Bench, engine, fresh, report
from events.envelope import NewEvent
from events.items import from_item
from events.store import EventStore
from projections.batch import BatchProjector, Entry
from projections.registry import VIEWS, view_for_stream
from projections.view import stream_key
from projections.view_store import ViewStore
from processors.local.tables import local_tables

BATCH = 100  # the template's BatchSize for the projector


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
    items = list(store.scan_items(segments=4))
    events = [from_item(item) for item in items]
    by_stream: dict[str, list] = {}
    for event in events:
        by_stream.setdefault(event.stream, []).append(event)
    streams = list(by_stream.values())
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
    return [Entry(str(10**20 + i), e.stream, e) for i, e in enumerate(ordered)]


_WRITE_CALLS = {"PutItem", "DeleteItem", "TransactWriteItems", "BatchExecuteStatement", "BatchWriteItem"}


def _project(bench: Bench, store: EventStore, entries: list[Entry]) -> tuple[float, int, int]:
    """(seconds, items written, write requests) for projecting the entries in Lambda-sized batches."""
    tables = local_tables("bench-", versions={})
    requests: list[str] = []
    bench.client.meta.events.register(
        "before-call.dynamodb.*",
        lambda model, **_: requests.append(model.name) if model.name in _WRITE_CALLS else None)
    projector = BatchProjector(ViewStore(bench.client, tables.views), store.read_stream, VIEWS)
    started, writes = time.perf_counter(), 0
    for first in range(0, len(entries), BATCH):
        outcome = projector.project(entries[first:first + BATCH])
        if outcome.failed_sequence_numbers:  # a timing of failed projections would mean nothing
            raise RuntimeError(f"projection failed at records {outcome.failed_sequence_numbers}")
        writes += outcome.total("rows_written")
    return time.perf_counter() - started, writes, len(requests)


def _raw_puts_per_s(bench: Bench, count: int = 400) -> float:
    bench.client.create_table(
        TableName="bench-raw", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    started = time.perf_counter()
    for i in range(count):
        bench.client.put_item(TableName="bench-raw", Item={"k": {"S": f"k{i}"}, "physical": {"N": str(i)},
                                                            "available": {"N": str(i)}, "updated_at": {"S": "t"}},
                              ConditionExpression="attribute_not_exists(k)")
    return count / (time.perf_counter() - started)


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


def run(endpoint_url: str, events: int = 10_000) -> dict[str, float]:
    rng = random.Random(11)  # noqa: S311 - a reproducible workload, not a secret
    mixed = fresh(endpoint_url)
    mixed_store = EventStore.over(mixed.client, mixed.names)
    appended = build_history(mixed_store, events, per_stream=4)
    raw = _raw_puts_per_s(mixed)
    seconds, writes, requests = _project(mixed, mixed_store, _entries(mixed_store, interleave=True, rng=rng))
    cpu = _cpu_us_per_event(mixed, mixed_store)

    bursty = fresh(endpoint_url)
    bursty_store = EventStore.over(bursty.client, bursty.names)
    burst_events = build_history(bursty_store, events // 4, per_stream=10)
    _, burst_writes, burst_requests = _project(bursty, bursty_store, _entries(bursty_store, interleave=False, rng=rng))

    baseline = _import_seconds("import boto3, aws_lambda_powertools, pydantic")
    projector_import = _import_seconds("import processors.functions.projector")
    result = {
        "events": appended, "projector_events_per_s": appended / seconds, "raw_puts_per_s": raw,
        "throughput_ratio": appended / seconds / raw, "writes_per_event_mixed": writes / appended,
        "writes_per_event_bursty": burst_writes / burst_events, "cpu_us_per_event": cpu,
        "write_requests_per_event_mixed": requests / appended,
        "write_requests_per_event_bursty": burst_requests / burst_events,
        "import_ratio": projector_import / baseline,
    }
    report(f"projector ({appended} mixed events; {burst_events} in bursts of 10 per stream)", [
        ("projector", f"{result['projector_events_per_s']:.0f} events/s"),
        ("raw sequential conditional puts", f"{raw:.0f} puts/s"),
        ("projector / raw", f"{result['throughput_ratio']:.2f}x   (goal >= 1.5x)"),
        ("items written per event, mixed", f"{result['writes_per_event_mixed']:.2f}   (goal <= 1.0)"),
        ("items written per event, 10-event bursts", f"{result['writes_per_event_bursty']:.2f}   (goal <= 0.2)"),
        ("write requests per event, mixed", f"{result['write_requests_per_event_mixed']:.3f}"),
        ("write requests per event, 10-event bursts", f"{result['write_requests_per_event_bursty']:.3f}"),
        ("decode + validate + fold", f"{cpu:.1f} us CPU/event   (goal <= 50)"),
        ("cold import projector / baseline", f"{projector_import * 1e3:.0f} ms / {baseline * 1e3:.0f} ms = "
                                             f"{result['import_ratio']:.2f}x   (goal <= 1.3x)"),
    ])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    with engine(args.endpoint_url) as url:
        run(url, args.events)


if __name__ == "__main__":
    main()
