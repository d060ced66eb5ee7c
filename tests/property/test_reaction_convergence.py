"""The reactor under the deliveries Lambda may make: what holds at any ParallelizationFactor, and the
one thing that needs factor 1, why the reactor's stays at 1 (template.yaml ReactorFunction).

At any factor (each item's order kept and nothing more, records duplicated, views behind or ahead of
the log) its effects are the ones reacting to the log once, in order, produces: the same alerts,
storefront broadcasts and delivery messages, each appended once. That holds because a reaction is
decided from the log, not from delivery order (the stream's state right before and after the event,
processors/services/state_reader.py), and every effect is appended under a key derived from its cause.

What does not hold above 1 is the order of the broadcasts on a SKU's stream: they are appended in the
order the events are reacted to, and the last one must carry the SKU's latest count (the inventory
view's ``last_broadcast``, what the storefront was last sent). At factor 1 a shard's records come in
order and it does; above 1 a stream's events may be reacted to in any order, and it may not.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from events.envelope import NewEvent
from events.items import from_item
from events.memory import InMemoryEventLog
from processors.local.tables import view_keys
from processors.services.reactor import Reactor
from projections.batch import BatchProjector, Entry
from projections.memory import InMemoryViewRows
from projections.reactor.settings import AlertSettings
from projections.registry import VIEWS
from tests.property.lanes import Handle, deliver_in_lanes

T0 = datetime(2025, 11, 11, 10, tzinfo=timezone.utc)
STOREFRONT = "https://shop.example/stock"
INVENTORY = "dynafold.inventory."

steps = st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["count", "adjust", "damaged", "sellable"]),
                           st.integers(0, 12)), min_size=1, max_size=16)
deliveries = st.fixed_dictionaries({
    "seed": st.integers(0, 2**16),
    "parallelization_factor": st.sampled_from([1, 2, 3, 10]),
    "batch_size": st.integers(1, 10),
    "duplicate_rate": st.sampled_from([0.0, 0.3]),
    "views": st.sampled_from(["empty", "caught up"]),
})


def event(n: int, sku: str, kind: str, amount: int) -> NewEvent:
    data = {
        "count": (INVENTORY + "physical_count_set.v1", {"sku": sku, "physical": amount}),
        "adjust": (INVENTORY + "stock_adjusted.v2", {"sku": sku, "delta": -amount, "reason": "order"}),
        "damaged": (INVENTORY + "return_recorded.v1", {"sku": sku, "quantity": 1 + amount % 3, "disposition": "DAMAGED",
                                                       "order_id": f"o{n}", "restocked": False}),
        "sellable": (INVENTORY + "return_recorded.v1", {"sku": sku, "quantity": 1, "disposition": "SELLABLE",
                                                        "order_id": f"o{n}", "restocked": True}),
    }[kind]
    return NewEvent(data[0], data[1], id=f"evt-{n}", time=T0 + timedelta(seconds=n))


def logged(history: list[tuple[str, str, int]]) -> InMemoryEventLog:
    log = InMemoryEventLog(clock=lambda: T0 + timedelta(days=1))
    for n, (sku, kind, amount) in enumerate(history):
        log.append(f"sku:{sku}", [event(n, sku, kind, amount)])
    return log


def effects(log: InMemoryEventLog, history_ids: set[str]) -> Counter[tuple[str, str, str]]:
    """What the reactor appended: (stream, type, data) of every event that is not the history's."""
    return Counter((e.stream, e.type, e.data_json) for e in map(from_item, log.scan_items(segments=1))
                   if e.id not in history_ids)


def reactor(log: InMemoryEventLog, views: InMemoryViewRows) -> Reactor:
    return Reactor(log, views, AlertSettings(low_stock_threshold=5), storefront_url=STOREFRONT)


def reacting(one: Reactor) -> Handle:
    """A batch handed to the reactor, record by record (a reaction never fails here)."""
    def react(batch: list[Entry]) -> set[str]:
        for entry in batch:
            assert entry.event is not None
            one.react(entry.event)
        return set()
    return react


@settings(max_examples=60, deadline=None)
@given(history=steps, delivery=deliveries)
def test_effects_equal_reacting_once_in_order_under_any_parallel_delivery(history, delivery):
    expected_log = logged(history)
    originals = [from_item(item) for item in expected_log.scan_items(segments=1)]
    originals.sort(key=lambda e: e.time)
    ids = {e.id for e in originals}
    in_order = reactor(expected_log, InMemoryViewRows(view_keys()))
    for one in originals:
        in_order.react(one)
    expected = effects(expected_log, ids)
    assert all(count == 1 for count in expected.values())

    log, views = logged(history), InMemoryViewRows(view_keys())
    entries = [Entry(str(1000 + i), e.stream, e) for i, e in enumerate(originals)]
    if delivery["views"] == "caught up":  # the projector ran first: rows ahead of the reactor's events
        BatchProjector(views, log.read_stream, VIEWS).project(entries)
    rng = random.Random(delivery["seed"])
    delivered = [e for e in entries for _ in range(2 if rng.random() < delivery["duplicate_rate"] else 1)]
    delivered = [Entry(str(2000 + i), e.stream, e.event) for i, e in enumerate(delivered)]
    deliver_in_lanes(delivered, delivery["batch_size"], delivery["parallelization_factor"],
                     reacting(reactor(log, views)))
    assert effects(log, ids) == expected


def last_broadcasts(log: InMemoryEventLog) -> dict[str, int]:
    """SKU stream -> the count its last storefront broadcast carried."""
    last: dict[str, int] = {}
    for item in sorted(log.scan_items(segments=1), key=lambda i: (i["stream"]["S"], int(i["version"]["N"]))):
        recorded = from_item(item)
        if recorded.type.endswith("stock_broadcast.v1"):
            last[recorded.stream] = recorded.data.count
    return last


def available(log: InMemoryEventLog, stream: str) -> int:
    from projections.inventory import InventoryProjection

    return InventoryProjection.fold(stream.split(":", 1)[1], log.read_stream(stream)).available


@settings(max_examples=60, deadline=None)
@given(history=steps, seed=st.integers(0, 2**16), batch_size=st.integers(1, 10))
def test_at_factor_one_the_last_broadcast_carries_the_latest_count(history, seed, batch_size):
    log, views = logged(history), InMemoryViewRows(view_keys())
    originals = sorted((from_item(item) for item in log.scan_items(segments=1)), key=lambda e: e.time)
    rng = random.Random(seed)
    delivered = [Entry(str(1000 + i), e.stream, e) for i, e in enumerate(
        e for e in originals for _ in range(2 if rng.random() < 0.3 else 1))]
    deliver_in_lanes(delivered, batch_size, 1, reacting(reactor(log, views)))
    for stream, count in last_broadcasts(log).items():
        assert count == available(log, stream), stream


def test_above_one_a_stale_broadcast_can_come_last():
    """v3 reacted to before v2, as Lambda may deliver them above factor 1 (each event its own item)."""
    log = logged([("A", "count", 10), ("A", "adjust", 2), ("A", "adjust", 3)])
    v1, v2, v3 = sorted((from_item(item) for item in log.scan_items(segments=1)), key=lambda e: e.version)
    parallel = reactor(log, InMemoryViewRows(view_keys()))
    for recorded in (v1, v3, v2):
        parallel.react(recorded)
    assert available(log, "sku:A") == 5 and last_broadcasts(log) == {"sku:A": 8}  # the storefront left at 8
