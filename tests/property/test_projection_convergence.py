"""Rule 5 of DESIGN.md, tested: under any delivery order, duplication or partial failure with
retries, every view equals a straight fold of the history.

The history is appended to an event log (so gap filling reads real events), then delivered to
the projector the way a misbehaving event source mapping could: per-stream order kept or broken,
records duplicated, batches failing part-way and redelivered from the lowest failed sequence
number, and up to ten concurrent batches per shard (ParallelizationFactor), each keeping only its
items' order. It runs on the in-memory ports (a unit test, many examples) and, fewer examples, on
DynamoDB Local (integration): the contract tests (tests/contract/) hold both to one behaviour.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.envelope import NewEvent
from events.items import from_item
from events.memory import InMemoryEventLog
from events.ports import EventLog
from events.store import EventStore
from processors.adapters.aws import dynamodb_client
from processors.local.tables import local_tables, view_keys
from processors.operations.tables import TableNames, create_tables
from projections.batch import BatchProjector, Entry
from projections.memory import InMemoryViewRows
from projections.ports import StaleView, ViewRows
from projections.registry import VIEWS, view_for_stream
from projections.view import Row, stream_key
from projections.view_store import ViewStore
from projections.view_store import from_item as row_from_item
from tests.property.lanes import deliver_in_lanes

# Recent: pending-error rows carry a 7-day TTL that DynamoDB Local enforces in the background.
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
SKUS, ORDERS, MESSAGES = ["A", "B"], ["o1", "o2"], ["s1:m1", "s1:m2"]


def sku_event(sku: str, kind: int, n: int) -> NewEvent:
    t = "dynafold.inventory."
    options = [
        (t + "physical_count_set.v1", {"sku": sku, "physical": n * 3}),
        (t + "stock_adjusted.v2", {"sku": sku, "delta": n - 4, "reason": "order"}),
        (t + "buffer_set.v1", {"sku": sku, "buffer": n % 4}),
        (t + "return_recorded.v1", {"sku": sku, "quantity": 1 + n % 3, "disposition": ["SELLABLE", "DAMAGED"][n % 2],
                                    "order_id": f"ord-{n}", "restocked": n % 2 == 0}),
        (t + "stock_broadcast.v1", {"sku": sku, "count": n, "tx_id": f"tx-{n}"}),
    ]
    event_type, data = options[kind % len(options)]
    return NewEvent(event_type, data)


def order_event(order: str, kind: int, n: int) -> NewEvent:
    hashes = [h for i, h in enumerate(["h1", "h2", "h3"]) if (n >> i) & 1]
    if kind % 3 == 2 and hashes:
        return NewEvent("dynafold.orders.errors_notified.v1", {"order_id": order, "error_hashes": hashes[:1]})
    errors = [{"error_hash": h, "rule": f"rule-{h}", "message": f"problem {h} #{n}"} for h in hashes]
    return NewEvent("dynafold.orders.validated.v1", {"order_id": order, "order_number": f"SO-{order}",
                                                     "errors": errors})


def delivery_events(delivery: str, count: int) -> list[NewEvent]:
    sender, message = delivery.split(":")
    events = [NewEvent("dynafold.delivery.message_received.v1",
                       {"sender_id": sender, "message_id": message, "target_url": "https://example.com/h"})]
    for attempt in range(1, count):
        events.append(NewEvent("dynafold.delivery.attempted.v1", {
            "attempt": attempt, "success": False, "category": "SERVER_ERROR", "retryable": True,
            "status_code": 500, "response_time_ms": 12.5}))
    return events


histories = st.fixed_dictionaries({
    "sku": st.lists(st.tuples(st.sampled_from(SKUS), st.integers(0, 4), st.integers(0, 9)), max_size=14),
    "order": st.lists(st.tuples(st.sampled_from(ORDERS), st.integers(0, 2), st.integers(0, 7)), max_size=8),
    "delivery": st.lists(st.sampled_from(MESSAGES), max_size=2, unique=True),
    "delivery_len": st.integers(1, 4),
})
deliveries = st.fixed_dictionaries({
    "seed": st.integers(0, 2**16),
    "shuffle_within_stream": st.booleans(),
    "duplicate_rate": st.sampled_from([0.0, 0.2, 0.5]),
    "batch_size": st.integers(1, 12),
    "failure_rate": st.sampled_from([0.0, 0.15, 0.3]),
    # Lambda's ParallelizationFactor (template.yaml ProjectorParallelizationFactor): above 1 only each
    # item's order is kept, and every event is its own item (tests/property/lanes.py).
    "parallelization_factor": st.sampled_from([1, 2, 3, 10]),
})


class Flaky:
    """View rows that fail some saves as if the invocation died before its write landed."""

    def __init__(self, rows: ViewRows, rng: random.Random, rate: float) -> None:
        self._rows, self._rng, self._rate = rows, rng, rate

    def save(self, *args, **kwargs):
        if self._rng.random() < self._rate:
            raise StaleView() if self._rng.random() < 0.5 else TimeoutError("injected")
        return self._rows.save(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._rows, name)


def _append_history(store, history) -> None:
    at = iter(T0 + timedelta(seconds=i) for i in range(10_000))
    for sku, kind, n in history["sku"]:
        store.append(f"sku:{sku}", [replace(sku_event(sku, kind, n), time=next(at))])
    for order, kind, n in history["order"]:
        store.append(f"order:{order}", [replace(order_event(order, kind, n), time=next(at))])
    for delivery in history["delivery"]:
        events = [replace(e, time=next(at)) for e in delivery_events(delivery, history["delivery_len"])]
        store.append(f"delivery:{delivery}", events)


def _deliver(projector: BatchProjector, entries: list[Entry], batch_size: int, factor: int) -> None:
    """Lambda-like: each lane's batches from a position; on failure, retry from the lowest failed record."""
    deliver_in_lanes(entries, batch_size, factor,
                     lambda batch: set(projector.project(batch).failed_sequence_numbers))


@settings(max_examples=150, deadline=None)
@given(history=histories, delivery=deliveries)
def test_views_equal_a_straight_fold_under_any_delivery(history, delivery):
    rows = InMemoryViewRows(view_keys())
    _converges(InMemoryEventLog(), rows, history, delivery,
               lambda sku: [r for r in rows.rows("inventory-returns") if r["sku"] == sku])


@pytest.mark.integration
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, delivery=deliveries)
def test_views_equal_a_straight_fold_under_any_delivery_on_dynamodb_local(dynamodb_local, history, delivery):
    # A fresh database per example: DynamoDB Local slows down as stream tables accumulate.
    client = dynamodb_client(dynamodb_local.endpoint_url, access_key="p" + uuid.uuid4().hex[:15])
    create_tables(client, TableNames.with_prefix("p-"))
    tables = local_tables("p-", versions={})

    def returns_of(sku: str) -> list[Row]:
        items = client.query(TableName=tables.views["inventory-returns"], KeyConditionExpression="sku = :s",
                             ExpressionAttributeValues={":s": {"S": sku}}, ConsistentRead=True)["Items"]
        return [row_from_item(item) for item in items]

    _converges(EventStore.over(client, tables), ViewStore(client, tables.views),
               history, delivery, returns_of)


def _converges(store: EventLog, rows: ViewRows, history, delivery, returns_of: Callable[[str], list[Row]]) -> None:
    _append_history(store, history)
    items = list(store.scan_items(segments=1))
    by_stream: dict[str, list] = {}
    for item in items:
        by_stream.setdefault(item["stream"]["S"], []).append(from_item(item))
    rng = random.Random(delivery["seed"])
    entries = []
    for stream, events in by_stream.items():
        for event in events:
            entries.append(Entry("", stream, event))
    if delivery["shuffle_within_stream"]:
        rng.shuffle(entries)
    else:  # interleave streams but keep each stream's order
        rng.shuffle(entries)
        positions = {}
        for stream, events in by_stream.items():
            slots = [i for i, e in enumerate(entries) if e.stream == stream]
            for slot, event in zip(slots, events, strict=True):
                positions[slot] = Entry("", stream, event)
        entries = [positions[i] for i in range(len(entries))]
    duplicated = []
    for entry in entries:
        duplicated.append(entry)
        if rng.random() < delivery["duplicate_rate"]:
            duplicated.append(entry)
    entries = [Entry(str(1000 + i), e.stream, e.event) for i, e in enumerate(duplicated)]

    projector = BatchProjector(Flaky(rows, rng, delivery["failure_rate"]), store.read_stream, VIEWS)
    _deliver(projector, entries, delivery["batch_size"], delivery["parallelization_factor"])

    for stream, events in by_stream.items():
        view = view_for_stream(stream)
        expected = view.fold(stream_key(stream), events)
        loaded = rows.load(view, stream_key(stream))
        assert loaded.version == events[-1].version, stream
        assert dict(loaded.rows) == {k: {n: v for n, v in row.items() if v is not None}
                                     for k, row in view.rows(expected).items()}, stream
        if stream.startswith("sku:"):
            returns = returns_of(stream_key(stream))
            expected_returns = [e for e in events if e.type.endswith("return_recorded.v1")]
            assert len(returns) == len(expected_returns)
            assert [r["event_id"] for r in returns] == [e.id for e in expected_returns]
