"""The ViewRows contract (projections/ports.py): DESIGN.md rule 5's guarded writes, on every implementation.

Each test runs on the in-memory rows, on ViewStore over moto and (integration) over DynamoDB Local,
with the real views and folds (inventory: one row and a returns history; pending errors: a head
and a row per error).
"""

from __future__ import annotations

from typing import Any

import pytest

from events.envelope import NewEvent, RecordedEvent
from events.memory import InMemoryEventLog
from projections.inventory.fold import InventoryProjection
from projections.pending_errors.fold import PendingErrorsProjection
from projections.ports import PendingSave, StaleView
from projections.view import View
from tests.contract.conftest import FIXED, RowsHarness


def recorded(stream: str, *events: NewEvent) -> list[RecordedEvent]:
    log = InMemoryEventLog(clock=lambda: FIXED)
    log.append(stream, list(events))
    return log.read_stream(stream)


def count(sku: str, physical: int) -> NewEvent:
    return NewEvent("dynafold.inventory.physical_count_set.v1", {"sku": sku, "physical": physical})


def returned(sku: str, order: str) -> NewEvent:
    return NewEvent("dynafold.inventory.return_recorded.v1", {"sku": sku, "quantity": 1, "disposition": "DAMAGED",
                                                              "order_id": order, "restocked": False})


def validated(order: str, *hashes: str) -> NewEvent:
    return NewEvent("dynafold.orders.validated.v1", {"order_id": order, "order_number": f"SO-{order}", "errors": [
        {"error_hash": h, "rule": f"rule-{h}", "message": f"problem {h}"} for h in hashes]})


def pending(view: View[Any], stream: str, events: list[RecordedEvent], rows: Any) -> PendingSave[Any]:
    """The save of ``events`` folded onto what ``rows`` holds now."""
    key = stream.split(":", 1)[1]
    loaded = rows.load(view, key)
    state = view.fold(key, [e for e in events if e.version > loaded.version], loaded.state)
    return PendingSave(view, stream, key, loaded, state, events[-1].version)


def save(rows: Any, p: PendingSave[Any]) -> int:
    return rows.save(p.view, p.stream, p.key, p.loaded, p.state, p.version)


def test_nothing_stored_loads_as_the_initial_state_at_version_0(rows_harness: RowsHarness) -> None:
    cases: list[tuple[View[Any], str]] = [(InventoryProjection, "A"), (PendingErrorsProjection, "o1")]
    for view, key in cases:
        loaded = rows_harness.rows.load(view, key)
        assert (loaded.version, dict(loaded.rows), loaded.unfinished) == (0, {}, False)
        assert loaded.state == view.initial(key)
    loaded = rows_harness.rows.load_many({InventoryProjection: ["A", "B"], PendingErrorsProjection: ["o1"]})
    assert loaded[(InventoryProjection.name, "B")].version == 0
    assert loaded[(PendingErrorsProjection.name, "o1")] == rows_harness.rows.load(PendingErrorsProjection, "o1")


def test_a_saved_single_row_loads_back_as_the_state_it_was_folded_from(rows_harness: RowsHarness) -> None:
    rows = rows_harness.rows
    events = recorded("sku:A", count("A", 5), returned("A", "r1"), count("A", 7))
    written = save(rows, pending(InventoryProjection, "sku:A", events, rows))
    assert written == 2  # the row and its return
    loaded = rows.load(InventoryProjection, "A")
    # (the state a load gives has no new returns: those are the extras of a fold since the load)
    assert (loaded.version, InventoryProjection.rows(loaded.state)) == (3, InventoryProjection.rows(
        InventoryProjection.fold("A", events)))
    assert rows.load_many({InventoryProjection: ["A", "B"]})[(InventoryProjection.name, "A")] == loaded
    [stored] = rows_harness.stored("inventory")
    assert (stored["sku"], stored["physical"], stored["stream_id"], stored["stream_version"]) == ("A", 7, "sku:A", 3)
    assert [r["order_id"] for r in rows_harness.stored("inventory-returns")] == ["r1"]


def test_a_multi_row_view_writes_what_changed_and_removes_rows_gone(rows_harness: RowsHarness) -> None:
    rows = rows_harness.rows
    events = recorded("order:o1", validated("o1", "h1", "h2"))
    assert save(rows, pending(PendingErrorsProjection, "order:o1", events, rows)) == 4  # head, order row, two rows
    events = recorded("order:o1", validated("o1", "h1", "h2"), validated("o1", "h2", "h3"))
    written = save(rows, pending(PendingErrorsProjection, "order:o1", events, rows))
    assert written == 3  # the head, h3 new, h1 gone (h2 and the order row unchanged: not rewritten)
    loaded = rows.load(PendingErrorsProjection, "o1")
    assert loaded.version == 2 and sorted(k for k in loaded.rows if k) == ["@order", "h2", "h3"]
    assert loaded.state == PendingErrorsProjection.fold("o1", events)
    assert sorted(r["error_hash"] for r in rows_harness.stored("pending-errors")) == ["#", "@order", "h2", "h3"]


def test_streams_of_many_views_load_together_as_each_loads_alone(rows_harness: RowsHarness) -> None:
    rows = rows_harness.rows
    histories = {
        "order:o1": recorded("order:o1", validated("o1", "h1", "h2"), validated("o1", "h2", "h3")),
        "order:o2": recorded("order:o2", validated("o2", "h9"), validated("o2")),  # its one error resolved
        "order:o3": recorded("order:o3", validated("o3", "x")),
        "sku:A": recorded("sku:A", count("A", 4)),
    }
    for stream, events in histories.items():  # one event at a time: rows come, change and go
        view = InventoryProjection if stream.startswith("sku:") else PendingErrorsProjection
        for version in range(1, len(events) + 1):
            save(rows, pending(view, stream, events[:version], rows))
    orders = ["o1", "o2", "o3", "o4"]  # o4: never written
    loaded = rows.load_many({PendingErrorsProjection: orders, InventoryProjection: ["A", "B"]})
    assert loaded == {**{(PendingErrorsProjection.name, o): rows.load(PendingErrorsProjection, o) for o in orders},
                      **{(InventoryProjection.name, s): rows.load(InventoryProjection, s) for s in "AB"}}
    assert sorted(k for k in loaded[(PendingErrorsProjection.name, "o1")].rows if k) == ["@order", "h2", "h3"]
    assert list(loaded[(PendingErrorsProjection.name, "o2")].rows) == ["@order"]  # its one error resolved
    assert loaded[(PendingErrorsProjection.name, "o3")].state == PendingErrorsProjection.fold("o3", histories["order:o3"])


@pytest.mark.parametrize("view, stream, make", [
    (InventoryProjection, "sku:A", lambda n: count("A", n)),
    (PendingErrorsProjection, "order:o1", lambda n: validated("o1", f"h{n}")),
])
def test_a_save_on_rows_that_moved_on_is_stale_and_changes_nothing(rows_harness: RowsHarness, view: View[Any],
                                                                    stream: str, make: Any) -> None:
    rows = rows_harness.rows
    events = recorded(stream, make(1), make(2), make(3))
    first, second = pending(view, stream, events[:1], rows), pending(view, stream, events[:2], rows)
    save(rows, first)  # both loaded version 0: the first write wins
    with pytest.raises(StaleView):
        save(rows, second)
    assert rows.load(view, stream.split(":")[1]).version == 1
    save(rows, pending(view, stream, events, rows))  # reloaded: written
    before = rows_harness.stored(view.table)
    with pytest.raises(StaleView):  # an old load never writes the rows backwards
        save(rows, first)
    assert rows_harness.stored(view.table) == before
    assert rows.load(view, stream.split(":")[1]).version == 3


def test_grouped_saves_settle_each_stream_on_its_own(rows_harness: RowsHarness) -> None:
    rows = rows_harness.rows
    o1, o2 = recorded("order:o1", validated("o1", "a"), validated("o1", "b")), recorded("order:o2", validated("o2", "c"))
    stale = pending(PendingErrorsProjection, "order:o1", o1[:1], rows)
    save(rows, pending(PendingErrorsProjection, "order:o1", o1, rows))
    fresh = pending(PendingErrorsProjection, "order:o2", o2, rows)
    a = recorded("sku:A", count("A", 1), returned("A", "r1"))
    with_extra = pending(InventoryProjection, "sku:A", a, rows)
    outcome = rows.save_grouped([stale, fresh, with_extra])
    assert isinstance(outcome["order:o1"], StaleView)
    assert (outcome["order:o2"], outcome["sku:A"]) == (3, 2)  # o2: its head, order row and error
    assert rows.load(PendingErrorsProjection, "o1").version == 2 and rows.load(PendingErrorsProjection, "o2").version == 1
    assert InventoryProjection.rows(rows.load(InventoryProjection, "A").state) == InventoryProjection.rows(
        InventoryProjection.fold("A", a))
    assert [r["order_id"] for r in rows_harness.stored("inventory-returns")] == ["r1"]


def test_batched_single_rows_settle_each_stream_on_its_own(rows_harness: RowsHarness) -> None:
    if rows_harness.engine == "moto":
        pytest.skip("moto's PartiQL cannot run the conditional INSERT/UPDATE statements (DynamoDB Local can)")
    rows = rows_harness.rows
    histories = {sku: recorded(f"sku:{sku}", count(sku, 1), count(sku, 2)) for sku in "ABC"}
    stale = pending(InventoryProjection, "sku:A", histories["A"][:1], rows)
    save(rows, pending(InventoryProjection, "sku:A", histories["A"], rows))
    saves = [stale, *(pending(InventoryProjection, f"sku:{s}", histories[s], rows) for s in "BC")]
    assert all(rows.batchable(s) for s in saves)
    assert not rows.batchable(pending(InventoryProjection, "sku:D", recorded("sku:D", returned("D", "r")), rows))
    assert not rows.batchable(pending(PendingErrorsProjection, "order:o", recorded("order:o", validated("o", "x")),
                                      rows))
    outcome = rows.save_batched(saves)
    assert isinstance(outcome["sku:A"], StaleView) and (outcome["sku:B"], outcome["sku:C"]) == (1, 1)
    again = [pending(InventoryProjection, "sku:B", histories["B"] + recorded("sku:B", count("B", 1), count("B", 2),
                                                                             count("B", 9))[2:], rows)]
    assert rows.save_batched(again) == {"sku:B": 1}  # an update of an existing row, at the version read
    assert {r["sku"]: (r["physical"], r["stream_version"]) for r in rows_harness.stored("inventory")} == {
        "A": (2, 2), "B": (9, 3), "C": (2, 2)}
