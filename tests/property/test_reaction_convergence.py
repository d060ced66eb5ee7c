"""The reactor is correct at ParallelizationFactor above 1: delivered as Lambda may then deliver (each
item's order kept and nothing more, records duplicated, views behind or ahead of the log), its effects
are the ones reacting to the log once, in order, produces: the same alerts, storefront broadcasts and
delivery messages, each appended once.

It holds because a reaction is decided from the log, not from delivery order: the state right before
and after the event is its stream folded up to that version (processors/services/state_reader.py),
and every effect is appended under an idempotency key derived from its cause.
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
from tests.property.lanes import deliver_in_lanes

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
    parallel = reactor(log, views)

    def react(batch: list[Entry]) -> set[str]:
        for entry in batch:
            assert entry.event is not None
            parallel.react(entry.event)
        return set()

    deliver_in_lanes(delivered, delivery["batch_size"], delivery["parallelization_factor"], react)
    assert effects(log, ids) == expected
