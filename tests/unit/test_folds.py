"""The four view folds: the seeds' scenarios, the store round trip, determinism and purity.

The store persists ``rows(state)`` and hands ``load`` what it reads back (None attributes
dropped, integral numbers as int); live processing folds on top of loaded state while replay
folds straight through, so ``rows -> store -> load -> rows`` must be the identity and folding
in segments (reloading between them) must equal one straight fold.
"""

from __future__ import annotations

import ast
import calendar
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from events import catalogue
from events.alerts import AlertRaised, AlertRead
from events.deliveries import (
    DeadLettered, DeliveryAttempted, DeliverySucceeded, MessageReceived, RedriveRequested, RetryScheduled,
)
from events.envelope import RecordedEvent, format_sequence, format_time
from events.inventory import (
    BufferSet,
    PhysicalCountSet,
    ReturnRecorded,
    ShopifyItemLinked,
    ShopifyItemUnlinked,
    ShopifyLevelReported,
    ShopifyPushPlanned,
    ShopifyPushSettled,
    StockAdjusted,
    StockBroadcast,
)
from events.orders import OrderError, OrderErrorsNotified, OrderValidated
from projections.alerts import AlertsProjection
from projections.alerts.fold import UNREAD_INDEX
from projections.delivery_status import DeliveryStatusProjection
from projections.delivery_status.fold import SENDER_INDEX, STATUS_INDEX
from projections.inventory import RETURNS_TABLE, InventoryItem, InventoryProjection
from projections.pending_errors import PendingErrorsProjection
from projections.pending_errors.fold import PENDING_INDEX
from projections.registry import VIEWS, VIEWS_BY_NAME, view_for_stream
from projections.view import Extra, View
from projections.view_store import from_item, to_item

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 11, 10, 0, tzinfo=timezone.utc)
TYPES = {spec.model: event_type for event_type, spec in catalogue.BY_TYPE.items()}


# ----------------------------------------------------------------------------- helpers

def recorded(stream: str, version: int, data: BaseModel, at: datetime) -> RecordedEvent:
    return RecordedEvent(
        stream=stream, version=version, id=f"{stream}/{version}", type=TYPES[type(data)],
        source="urn:dynafold:test", time=at, data=data, correlation_id=f"corr-{stream}",
        causation_id=None, prev_hash="0" * 64, hash=f"{version:064x}",
    )


def history(stream: str, steps: list[tuple[timedelta, BaseModel]]) -> list[RecordedEvent]:
    """Events 1..n of ``stream``, each at T0 + its offset."""
    return [recorded(stream, version, data, T0 + offset) for version, (offset, data) in enumerate(steps, 1)]


def t(offset: timedelta = timedelta()) -> str:
    return format_time(T0 + offset)


def through_store(rows: dict[str | None, dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    """What the view store gives ``load`` back for these rows: serialised items, read back."""
    return {sort_key: from_item(to_item(row)) for sort_key, row in rows.items()}


def typed(value: Any) -> Any:
    """A value with every leaf's type made explicit, so 2500 vs 2500.0 (or 1 vs True) differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [typed(v) for v in value]]
    return (type(value).__name__, value)


def reload(view: View[Any], key: str, state: Any) -> Any:
    return view.load(key, through_store(dict(view.rows(state))))


def comparable(state: Any) -> Any:
    # Extras are insert-only rows produced since the last load; load starts with none.
    return replace(state, new_returns=()) if isinstance(state, InventoryItem) else state


def rows_of(view: View[Any], key: str, events: list[RecordedEvent]) -> dict[str | None, dict[str, Any]]:
    return dict(view.rows(view.fold(key, events)))


# ----------------------------------------------------------------------------- pending errors (seed 000)

def _discount(message: str = "TUK item has 10% discount") -> OrderError:
    return OrderError(error_hash="h-disc", rule="Discount Validation", message=message,
                      details={"discount": 10.0, "line": 2, "sku": "TUK-1"})


FEE = OrderError(error_hash="h-fee", rule="Assembly Fee Validation", severity="warning",
                 message="assembly fee missing", details={})


def _validated(*errors: OrderError) -> OrderValidated:
    return OrderValidated(order_id="order-1", order_number="SO-000019", errors=errors)


def _expires(first: datetime) -> int:
    return calendar.timegm((first + timedelta(days=7)).utctimetuple())


def test_pending_error_added_refreshed_resolved_and_notified():
    view, stream = PendingErrorsProjection, "order:order-1"
    events = history(stream, [
        (timedelta(), _validated(_discount())),
        (timedelta(minutes=25), _validated(_discount("TUK item has 15% discount"), FEE)),
        (timedelta(minutes=30), _validated(FEE)),
        (timedelta(minutes=31), OrderErrorsNotified(order_id="order-1", error_hashes=("h-fee",))),
    ])

    added = rows_of(view, "order-1", events[:1])
    order_row = {"order_number": "SO-000019", "indexed_number": "SO-000019", "first_validated": t(), "remarks": ""}
    assert added == {"@order": order_row, "h-disc": {
        "order_number": "SO-000019", "rule": "Discount Validation", "severity": "error",
        "message": "TUK item has 10% discount", "details": {"discount": 10, "line": 2, "sku": "TUK-1"},
        "first_detected": "2025-11-11T10:00:00.000000Z", "last_seen": "2025-11-11T10:00:00.000000Z",
        "pending": PENDING_INDEX.value("PENDING", ("order-1", "h-disc")), "expires_at": _expires(T0),
    }}
    assert added["h-disc"]["expires_at"] == int(datetime(2025, 11, 18, 10, tzinfo=timezone.utc).timestamp())

    refreshed = rows_of(view, "order-1", events[:2])
    assert set(refreshed) == {"@order", "h-disc", "h-fee"} and refreshed["@order"] == order_row
    assert refreshed["h-disc"]["first_detected"] == t()
    assert refreshed["h-disc"]["last_seen"] == t(timedelta(minutes=25))
    assert refreshed["h-disc"]["message"] == "TUK item has 15% discount"
    assert refreshed["h-disc"]["expires_at"] == _expires(T0)  # the TTL runs from first detection
    assert refreshed["h-fee"]["first_detected"] == refreshed["h-fee"]["last_seen"] == t(timedelta(minutes=25))
    assert refreshed["h-fee"]["severity"] == "warning"

    resolved = rows_of(view, "order-1", events[:3])
    assert set(resolved) == {"@order", "h-fee"}  # no longer reported: auto-cleared
    assert resolved["h-fee"]["first_detected"] == t(timedelta(minutes=25))

    notified = view.fold("order-1", events)
    assert notified.errors == {}  # no longer pending; remembered as emailed while still reported
    assert dict(view.rows(notified)) == {"@order": order_row, "h-fee": {"order_number": "SO-000019",
                                                                        "notified_at": t(timedelta(minutes=31))}}


def test_pending_errors_of_a_clean_order_and_unknown_notifications_change_nothing():
    view = PendingErrorsProjection
    events = history("order:o2", [
        (timedelta(), OrderValidated(order_id="o2", order_number="SO-2")),
        (timedelta(minutes=1), OrderErrorsNotified(order_id="o2", error_hashes=("nope",))),
    ])
    clean = view.fold("o2", events)  # no errors, but the order is known: its order row finds it by number
    assert (clean.errors, clean.notified, clean.order_number, clean.first_validated) == ({}, {}, "SO-2", t())
    assert dict(view.rows(clean)) == {"@order": {"order_number": "SO-2", "indexed_number": "SO-2",
                                                 "first_validated": t(), "remarks": ""}}
    assert view.load("o2", view.rows(clean)) == clean
    one = history("order:order-1", [(timedelta(), _validated(_discount()))])
    state = view.fold("order-1", one)
    unknown = recorded("order:order-1", 2, OrderErrorsNotified(order_id="order-1", error_hashes=("nope",)),
                       T0 + timedelta(minutes=1))
    assert view.apply(state, unknown) == state


def test_a_notified_error_still_reported_stays_notified_and_is_not_pending_again():
    # Issue 12 defect 2: the order re-sent unchanged (or another field edited) must not reopen
    # the grace period of an error that was already emailed and never fixed.
    view = PendingErrorsProjection
    events = history("order:order-1", [
        (timedelta(), _validated(_discount())),
        (timedelta(minutes=30), OrderErrorsNotified(order_id="order-1", error_hashes=("h-disc",))),
        (timedelta(hours=2), _validated(_discount())),
        (timedelta(hours=3), _validated(_discount(), FEE)),
    ])
    state = view.fold("order-1", events[:3])
    assert state.errors == {} and set(state.notified) == {"h-disc"}
    rows = rows_of(view, "order-1", events[:3])
    assert set(rows) == {"@order", "h-disc"} and "pending" not in rows["h-disc"] and "expires_at" not in rows["h-disc"]
    assert view.load("order-1", rows) == state
    later = view.fold("order-1", events)
    assert set(later.errors) == {"h-fee"} and set(later.notified) == {"h-disc"}
    assert view.load("order-1", view.rows(later)) == later


def test_error_fixed_after_notification_and_reintroduced_starts_a_new_grace_period():
    view = PendingErrorsProjection
    events = history("order:order-1", [
        (timedelta(), _validated(_discount())),
        (timedelta(minutes=30), OrderErrorsNotified(order_id="order-1", error_hashes=("h-disc",))),
        (timedelta(hours=1), _validated()),
        (timedelta(hours=2), _validated(_discount())),
    ])
    fixed = view.fold("order-1", events[:3])  # fixed: nothing to remember but the order itself
    assert (fixed.errors, fixed.notified, fixed.order_number) == ({}, {}, "SO-000019")
    rows = rows_of(view, "order-1", events)
    assert rows["h-disc"]["first_detected"] == t(timedelta(hours=2)) and rows["h-disc"]["pending"].startswith("PENDING#")


# ----------------------------------------------------------------------------- delivery status (seeds 001, 002)

RECEIVED = MessageReceived(sender_id="s1", message_id="m1", target_url="https://example.com/hook",
                           payload={"hello": "world"})


def _failed(attempt: int, code: int, ms: float, error: str, category: str = "SERVER_ERROR") -> DeliveryAttempted:
    return DeliveryAttempted(attempt=attempt, success=False, category=category, retryable=category != "CLIENT_ERROR",
                             status_code=code, response_time_ms=ms, error=error)


def _retry(attempt: int, at: timedelta, delay: float, exponential: float, jitter: float) -> RetryScheduled:
    return RetryScheduled(attempt=attempt, next_retry_at=T0 + at + timedelta(seconds=delay),
                          delay_seconds=delay, exponential_delay=exponential, jitter=jitter)


def test_delivery_500_retry_503_retry_200():
    view, key = DeliveryStatusProjection, "s1:m1"
    s = timedelta(seconds=1)
    events = history("delivery:s1:m1", [
        (0 * s, RECEIVED),
        (1 * s, _failed(1, 500, 2500.0, "Internal Server Error")),
        (1 * s, _retry(1, 1 * s, 1.25, 1.0, 0.25)),
        (3 * s, _failed(2, 503, 120.5, "Service Unavailable")),
        (3 * s, _retry(2, 3 * s, 2.5, 2.0, 0.5)),
        (6 * s, DeliveryAttempted(attempt=3, success=True, category="SUCCESS", status_code=200,
                                  response_time_ms=80.0)),
        (7 * s, DeliverySucceeded(attempt=3, status_code=200, response_time_ms=80.0)),
    ])

    received = rows_of(view, key, events[:1])[None]
    assert received["status"] == "PENDING" and received["attempts"] == 0
    assert received["created_at"] == received["updated_at"] == received["due_at"] == t()
    assert (received["sender_id"], received["message_id"], received["target_url"]) == (
        "s1", "m1", "https://example.com/hook")
    assert received["retry_history"] == [] and received["last_result"] is None

    failed = rows_of(view, key, events[:2])[None]
    assert failed["status"] == "FAILED" and failed["attempts"] == 1
    assert failed["last_attempt_at"] == t(s)
    assert typed(failed["last_result"]) == typed({
        "success": False, "category": "SERVER_ERROR", "status_code": 500, "response_time_ms": 2500,
        "error": "Internal Server Error", "time": t(s)})

    scheduled = rows_of(view, key, events[:3])[None]
    assert scheduled["status"] == "RETRY_SCHEDULED"
    assert scheduled["next_retry_at"] == scheduled["due_at"] == t(2.25 * s)
    assert typed(scheduled["retry_history"]) == typed([{
        "attempt": 1, "time": t(s), "category": "SERVER_ERROR", "status_code": 500, "response_time_ms": 2500,
        "error": "Internal Server Error", "delay_seconds": 1.25, "exponential_delay": 1, "jitter": 0.25,
        "next_retry_at": t(2.25 * s)}])

    second = rows_of(view, key, events[:4])[None]
    assert second["status"] == "FAILED" and second["attempts"] == 2
    assert second["next_retry_at"] is None and second["due_at"] == second["updated_at"] == t(3 * s)

    rescheduled = rows_of(view, key, events[:5])[None]
    assert [entry["status_code"] for entry in rescheduled["retry_history"]] == [500, 503]
    assert rescheduled["retry_history"][1]["next_retry_at"] == rescheduled["due_at"] == t(5.5 * s)

    delivered = rows_of(view, key, events[:6])[None]
    assert delivered["status"] == "SUCCESS" and delivered["delivered_at"] == t(6 * s)
    assert delivered["attempts"] == 3 and delivered["next_retry_at"] is None

    final = rows_of(view, key, events)[None]
    assert typed(final) == typed({
        "sender_id": "s1", "message_id": "m1", "target_url": "https://example.com/hook",
        "status": "SUCCESS", "attempts": 3, "next_retry_at": None, "due_at": t(7 * s),
        "retry_history": rescheduled["retry_history"],
        "last_result": {"success": True, "category": "SUCCESS", "status_code": 200, "response_time_ms": 80,
                        "error": None, "time": t(6 * s)},
        "delivered_at": t(6 * s), "last_attempt_at": t(6 * s), "dead_letter_reason": None,
        "round_start": 1, "redriven_at": None, "created_at": t(), "updated_at": t(7 * s),
        # by-status and by-sender keys: the delivery's one bucket, whatever its status
        "status_shard": STATUS_INDEX.value("SUCCESS", (key,)), "sender_shard": SENDER_INDEX.value("s1", (key,)),
    })
    assert rescheduled["status_shard"] == STATUS_INDEX.value("RETRY_SCHEDULED", (key,))


def test_a_redrive_is_a_retry_due_at_once_and_a_dead_letters_redrive_starts_a_new_round():
    view, key, s = DeliveryStatusProjection, "s1:m1", timedelta(seconds=1)
    failed = DeliveryAttempted(attempt=4, success=False, category="SERVER_ERROR", retryable=True, status_code=503,
                               response_time_ms=5)
    events = history("delivery:s1:m1", [
        (timedelta(), RECEIVED), (s, failed), (s, DeadLettered(attempts=4, reason="MAX_RETRIES_EXCEEDED")),
        (10 * s, RedriveRequested(attempt=5, kind="redrive", previous_status="MAX_RETRIES_EXCEEDED",
                                  dead_letter_reason="MAX_RETRIES_EXCEEDED", requested_by="ops")),
    ])
    redriven = view.fold(key, events)
    assert (redriven.status, redriven.next_retry_at, redriven.due_at, redriven.redriven_at) == (
        "RETRY_SCHEDULED", t(10 * s), t(10 * s), t(10 * s))
    assert (redriven.dead_letter_reason, redriven.round_start, redriven.attempts) == (None, 5, 4)
    assert reload(view, key, redriven) == redriven
    now = RedriveRequested(attempt=6, kind="retry_now", previous_status="RETRY_SCHEDULED")
    sooner = view.apply(redriven, recorded("delivery:s1:m1", 5, now, T0 + 20 * s))
    assert (sooner.next_retry_at, sooner.round_start) == (t(20 * s), 5)  # brought forward, same budget


def test_delivery_succeeded_without_a_recorded_successful_attempt():
    view = DeliveryStatusProjection
    events = history("delivery:s1:m1", [
        (timedelta(), RECEIVED),
        (timedelta(seconds=2), DeliverySucceeded(attempt=1, status_code=204, response_time_ms=12.5)),
    ])
    row = rows_of(view, "s1:m1", events)[None]
    assert row["status"] == "SUCCESS" and row["attempts"] == 1
    assert row["delivered_at"] == row["last_attempt_at"] == t(timedelta(seconds=2))
    assert row["last_result"]["status_code"] == 204


def test_delivery_dead_lettered_after_max_retries():
    view, key = DeliveryStatusProjection, "s1:m1"
    s = timedelta(seconds=1)
    events = history("delivery:s1:m1", [
        (0 * s, RECEIVED),
        (1 * s, _failed(1, 500, 10.0, "boom")),
        (1 * s, _retry(1, 1 * s, 1.1, 1.0, 0.1)),
        (3 * s, _failed(2, 500, 10.0, "boom")),
        (3 * s, _retry(2, 3 * s, 2.2, 2.0, 0.2)),
        (6 * s, _failed(3, 502, 10.0, "bad gateway")),
        (6 * s, DeadLettered(attempts=3, reason="MAX_RETRIES_EXCEEDED")),
    ])
    row = rows_of(view, key, events)[None]
    assert row["status"] == "MAX_RETRIES_EXCEEDED"
    assert row["attempts"] == 3 and row["next_retry_at"] is None
    assert row["due_at"] == row["updated_at"] == t(6 * s)
    assert row["dead_letter_reason"] == "MAX_RETRIES_EXCEEDED"
    assert [entry["attempt"] for entry in row["retry_history"]] == [1, 2]
    assert "next_retry_at" not in to_item(row)  # absent, not NULL


def test_delivery_dead_lettered_for_another_reason_is_failed():
    view = DeliveryStatusProjection
    events = history("delivery:s1:m1", [
        (timedelta(), RECEIVED),
        (timedelta(seconds=1), _failed(1, 404, 5.0, "Not Found", category="CLIENT_ERROR")),
        (timedelta(seconds=1), DeadLettered(attempts=1, reason="CLIENT_ERROR")),
    ])
    row = rows_of(view, "s1:m1", events)[None]
    assert row["status"] == "FAILED" and row["dead_letter_reason"] == "CLIENT_ERROR"
    assert row["retry_history"] == []


# ----------------------------------------------------------------------------- alerts (seed 004)

RAISED = AlertRaised(alert_id="a1", alert_type="return_damaged", severity="warning", subject="sku:PROD-001",
                     sku="PROD-001", message="1 x PROD-001 returned damaged", cause_event_id="evt-9")


def test_alert_raised_then_read():
    view = AlertsProjection
    events = history("alert:a1", [
        (timedelta(), RAISED),
        (timedelta(minutes=5), AlertRead(alert_id="a1", read_by="ops@example.com")),
        (timedelta(minutes=9), AlertRead(alert_id="a1", read_by="someone-else")),
    ])
    raised = rows_of(view, "a1", events[:1])[None]
    assert raised == {
        "alert_type": "return_damaged", "severity": "warning", "subject": "sku:PROD-001", "sku": "PROD-001",
        "message": "1 x PROD-001 returned damaged", "time": t(), "read": False, "read_at": None,
        "read_by": None, "cause_event_id": "evt-9", "unread": UNREAD_INDEX.value("UNREAD", ("a1",)),
    }
    read = rows_of(view, "a1", events)[None]
    assert read["read"] is True and read["unread"] is None
    assert read["read_at"] == t(timedelta(minutes=5)) and read["read_by"] == "ops@example.com"  # first read wins
    assert "unread" not in to_item(read)  # leaves the sparse by-unread index
    assert read["time"] == t()


def test_alert_read_before_raised_and_raised_twice():
    view = AlertsProjection
    read_first = history("alert:a1", [(timedelta(), AlertRead(alert_id="a1"))])
    assert view.fold("a1", read_first) == view.initial("a1")
    twice = history("alert:a1", [(timedelta(), RAISED), (timedelta(minutes=1), replace_model(RAISED, message="x"))])
    assert rows_of(view, "a1", twice)[None]["message"] == RAISED.message


def replace_model(model: BaseModel, **changes: Any) -> BaseModel:
    return type(model).model_validate({**model.model_dump(), **changes})


# ----------------------------------------------------------------------------- inventory (seed 004)

def test_inventory_count_adjust_buffer_return_broadcast():
    view, m = InventoryProjection, timedelta(minutes=1)
    events = history("sku:PROD-001", [
        (0 * m, PhysicalCountSet(sku="PROD-001", physical=50, source="count")),
        (1 * m, StockAdjusted(sku="PROD-001", delta=-2, reason="order", order_id="#1001")),
        (2 * m, BufferSet(sku="PROD-001", buffer=5)),
        (3 * m, ReturnRecorded(sku="PROD-001", quantity=1, disposition="DAMAGED", order_id="#1001",
                               restocked=False)),
        (4 * m, ReturnRecorded(sku="PROD-001", quantity=2, disposition="SELLABLE", order_id="#1002",
                               restocked=True)),
        (5 * m, StockBroadcast(sku="PROD-001", count=45, tx_id="tx-1")),
    ])
    state = view.fold("PROD-001", events)
    assert dict(view.rows(state)) == {None: {
        "physical": 50, "buffer": 5, "available": 45,
        "last_broadcast": {"count": 45, "tx_id": "tx-1", "time": t(5 * m)},
        "updated_at": t(5 * m), "counted": True, "uncounted": False, "shopify_items": [], "unlisted_items": [],
    }}
    assert view.extras(state) == (
        Extra(RETURNS_TABLE, {"sku": "PROD-001", "returned_at": f"{t(3 * m)}#{format_sequence(4)}",
                              "time": t(3 * m), "quantity": 1, "disposition": "DAMAGED", "order_id": "#1001",
                              "restocked": False, "event_id": "sku:PROD-001/4"}),
        Extra(RETURNS_TABLE, {"sku": "PROD-001", "returned_at": f"{t(4 * m)}#{format_sequence(5)}",
                              "time": t(4 * m), "quantity": 2, "disposition": "SELLABLE", "order_id": "#1002",
                              "restocked": True, "event_id": "sku:PROD-001/5"}),
    )
    buffered = view.fold("PROD-001", events[:3])
    assert buffered.available == 43 and buffered.last_broadcast is None
    assert view.extras(reload(view, "PROD-001", state)) == ()


def test_shopify_levels_are_kept_per_location_newest_first_and_never_change_the_count():
    view, m = InventoryProjection, timedelta(minutes=1)

    def level(location: str, available: int | None, at: str, counted: bool = True) -> ShopifyLevelReported:
        return ShopifyLevelReported(sku="P", inventory_item_id="9", location_id=location, available=available,
                                    updated_at=at, counted=counted)

    events = history("sku:P", [
        (0 * m, PhysicalCountSet(sku="P", physical=10, source="count")),
        (1 * m, level("1", 4, "2024-01-01T00:00:02.000000Z")),
        (2 * m, level("1", 7, "2024-01-01T00:00:01.000000Z")),  # older level, later webhook: ignored
        (3 * m, level("2", -1, "2024-01-01T00:00:01.000000Z")),  # oversold
        (4 * m, level("3", None, "2024-01-01T00:00:01.000000Z")),  # untracked
        (5 * m, level("4", 50, "2024-01-01T00:00:01.000000Z", counted=False)),
    ])
    state = view.fold("P", events)
    [item] = state.shopify_items
    assert (state.physical, item.inventory_item_id, item.available) == (10, "9", 3)
    assert reload(view, "P", state).shopify_items == state.shopify_items
    assert view.fold("P", [events[0], *reversed(events[1:])]).shopify_items == state.shopify_items


SHARED_SKU = ("1070325021", "1070325022")  # Shopify's own sample: two variants with SKU "123"


def shared_level(item: str, available: int, at: str = "2024-01-02T14:00:00.000000Z") -> ShopifyLevelReported:
    return ShopifyLevelReported(sku="123", inventory_item_id=item, location_id="487838322", available=available,
                                updated_at=at, counted=True)


def test_items_sharing_a_sku_keep_their_own_levels():
    """Issue 18 §2: the second item's level replaced the first one's (Shopify showed 7 for the SKU,
    the item id was the last one's), so drift was judged against the wrong item."""
    first, second = SHARED_SKU
    events = history("sku:123", [(timedelta(), PhysicalCountSet(sku="123", physical=10)),
                                 (timedelta(minutes=1), shared_level(first, 9)),
                                 (timedelta(minutes=2), shared_level(second, 7))])
    state = InventoryProjection.fold("123", events)
    assert [(item.inventory_item_id, item.available) for item in state.shopify_items] == [(first, 9), (second, 7)]
    shown = state.to_dict()["shopify_items"]
    assert [(row["inventory_item_id"], row["levels"][0]["available"], row["shopify_available"]) for row in shown] == [
        (first, 9, 9), (second, 7, 7)]
    assert reload(InventoryProjection, "123", state).shopify_items == state.shopify_items


def test_a_sale_is_counted_once_and_moves_only_the_listing_shopify_sold_from():
    from events.inventory import ShopifyItemLinked, ShopifyItemUnlinked

    first, second = SHARED_SKU
    sale = StockAdjusted(sku="123", delta=-2, reason="order", applied_by_shopify=True, by_variant={second: -2})
    events = history("sku:123", [
        (timedelta(), ShopifyItemLinked(sku="123", inventory_item_id=first, variant_id=first, source="products")),
        (timedelta(seconds=1), ShopifyItemLinked(sku="123", inventory_item_id=second, variant_id=second,
                                                 source="products")),
        (timedelta(minutes=1), PhysicalCountSet(sku="123", physical=10)),
        (timedelta(minutes=2), sale)])
    state = InventoryProjection.fold("123", events)
    assert state.physical == 8 and [item.applied for item in state.shopify_items] == [0, -2]
    # unmapped: no longer a listing, and a level planned before that comes too late to bring it back
    gone = InventoryProjection.fold("123", [
        *events, recorded("sku:123", 5, ShopifyItemUnlinked(sku="123", inventory_item_id=second, source="products"),
                          T0 + timedelta(minutes=3)),
        recorded("sku:123", 6, shared_level(second, 3), T0 + timedelta(minutes=4))])
    assert [item.inventory_item_id for item in gone.shopify_items] == [first] and gone.unlisted_items == (second,)


def test_a_sku_is_uncounted_until_counted_or_adopted():
    from events.inventory import AdoptedLevel, ShopifyCountAdopted

    levels = history("sku:123", [(timedelta(), shared_level(SHARED_SKU[0], 50))])
    assert InventoryProjection.fold("123", levels).to_row()["uncounted"] is True
    adopted = ShopifyCountAdopted(sku="123", physical=50, from_item=SHARED_SKU[0], adopted_by="cli:ops", levels=(
        AdoptedLevel(inventory_item_id=SHARED_SKU[0], location_id="487838322", available=50,
                     updated_at="2024-01-02T14:00:00.000000Z"),))
    state = InventoryProjection.fold("123", [*levels, recorded("sku:123", 2, adopted, T0)])
    assert (state.physical, state.counted, state.to_row()["uncounted"]) == (50, True, False)


def test_inventory_available_never_negative_and_legacy_adjustments_fold():
    view = InventoryProjection
    current_type, legacy = catalogue.decode("dynafold.inventory.stock_adjusted.v1",
                                            json.dumps({"sku": "A", "quantity_change": -3}))
    assert current_type == TYPES[StockAdjusted]
    events = history("sku:A", [
        (timedelta(), PhysicalCountSet(sku="A", physical=2)),
        (timedelta(seconds=1), legacy),
        (timedelta(seconds=2), BufferSet(sku="A", buffer=4)),
    ])
    row = rows_of(view, "A", events)[None]
    assert (row["physical"], row["buffer"], row["available"]) == (-1, 4, 0)


# ----------------------------------------------------------------------------- round trips

SCENARIOS: list[tuple[View[Any], str, list[RecordedEvent]]] = [
    (PendingErrorsProjection, "order-1", history("order:order-1", [
        (timedelta(), _validated(_discount(), FEE)),
        (timedelta(minutes=5), _validated(_discount("again"), FEE))])),
    (DeliveryStatusProjection, "s1:m1", history("delivery:s1:m1", [
        (timedelta(), RECEIVED),
        (timedelta(seconds=1), _failed(1, 500, 2500.0, "Internal Server Error")),
        (timedelta(seconds=1), _retry(1, timedelta(seconds=1), 1.25, 1.0, 0.25))])),
    (AlertsProjection, "a1", history("alert:a1", [(timedelta(), RAISED)])),
    (AlertsProjection, "a1", history("alert:a1", [(timedelta(), RAISED),
                                                  (timedelta(seconds=1), AlertRead(alert_id="a1"))])),
    (InventoryProjection, "A", history("sku:A", [
        (timedelta(), PhysicalCountSet(sku="A", physical=7)),
        (timedelta(seconds=1), ReturnRecorded(sku="A", quantity=1, disposition="SELLABLE", restocked=True)),
        (timedelta(seconds=2), StockBroadcast(sku="A", count=8, tx_id="tx-1"))])),
]


@pytest.mark.parametrize("view,key,events", SCENARIOS, ids=lambda v: getattr(v, "name", None))
def test_load_of_rows_round_trips(view, key, events):
    state = view.fold(key, events)
    rows = dict(view.rows(state))
    assert rows  # the scenario produced rows
    loaded = view.load(key, through_store(rows))
    assert loaded == comparable(state)
    assert typed(dict(view.rows(loaded))) == typed(rows)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_no_rows_loads_the_initial_state(view):
    assert view.load("k", {}) == view.initial("k")
    assert dict(view.rows(view.initial("k"))) == {}


# ----------------------------------------------------------------------------- properties

AWARE = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5)),
                                                timezone(timedelta(hours=5, minutes=30))]))
MONEY = st.integers(0, 10**7).map(lambda n: n / 100)  # 0.00 .. 100000.00, as floats
SHORT = st.text(max_size=6)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | MONEY | SHORT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=4), children,
                                                                      max_size=3),
    max_leaves=6,
)
HASHES = st.sampled_from(["h1", "h2", "h3"])

order_events = st.one_of(
    st.builds(
        OrderValidated, order_id=st.just("o1"), order_number=st.sampled_from(["SO-1", "SO-2", ""]),
        errors=st.lists(st.builds(OrderError, error_hash=HASHES, rule=st.sampled_from(["Discount", "Fee"]),
                                  severity=st.sampled_from(["error", "warning"]), message=SHORT,
                                  details=st.dictionaries(st.text(min_size=1, max_size=4), JSON, max_size=3)),
                        max_size=3, unique_by=lambda e: e.error_hash).map(tuple),
    ),
    st.builds(OrderErrorsNotified, order_id=st.just("o1"),
              error_hashes=st.lists(HASHES, min_size=1, max_size=3).map(tuple),
              channel=st.sampled_from(["email", "sns", "outbox"])),
)
ATTEMPT = st.integers(1, 3)
delivery_events = st.one_of(
    st.just(RECEIVED),
    st.builds(DeliveryAttempted, attempt=ATTEMPT, success=st.booleans(),
              category=st.sampled_from(["SUCCESS", "CLIENT_ERROR", "SERVER_ERROR", "TIMEOUT"]),
              retryable=st.booleans(), status_code=st.none() | st.integers(100, 599), response_time_ms=MONEY,
              error=st.none() | SHORT),
    st.builds(RetryScheduled, attempt=ATTEMPT, next_retry_at=AWARE, delay_seconds=MONEY, exponential_delay=MONEY,
              jitter=MONEY),
    st.builds(DeliverySucceeded, attempt=ATTEMPT, status_code=st.integers(200, 299), response_time_ms=MONEY),
    st.builds(DeadLettered, attempts=st.integers(0, 4),
              reason=st.sampled_from(["MAX_RETRIES_EXCEEDED", "CLIENT_ERROR", "REFUSED"])),
    st.builds(RedriveRequested, attempt=st.integers(1, 5), kind=st.sampled_from(["redrive", "retry_now"]),
              previous_status=st.sampled_from(["MAX_RETRIES_EXCEEDED", "RETRY_SCHEDULED"]),
              dead_letter_reason=st.none() | st.just("MAX_RETRIES_EXCEEDED"), requested_by=st.none() | st.just("ops")),
)
alert_events = st.one_of(
    st.builds(AlertRaised, alert_id=st.just("a1"),
              alert_type=st.sampled_from(["stock_low", "return_damaged", "sync_failed"]),
              severity=st.sampled_from(["info", "warning", "critical"]), subject=st.just("sku:A"),
              sku=st.none() | st.just("A"), message=SHORT, cause_event_id=st.none() | st.just("e1")),
    st.builds(AlertRead, alert_id=st.just("a1"), read_by=st.none() | st.just("ops")),
)
inventory_events = st.one_of(
    st.builds(PhysicalCountSet, sku=st.just("A"), physical=st.integers(0, 100),
              source=st.sampled_from(["admin", "shopify", "count"])),
    st.builds(StockAdjusted, sku=st.just("A"), delta=st.integers(-10, 10),
              reason=st.sampled_from(["order", "restock", "correction", "unspecified"]),
              tx_id=st.none() | st.just("tx"), order_id=st.none() | st.just("#1"), applied_by_shopify=st.booleans(),
              by_variant=st.sampled_from([{}, {"11": -1}])),
    st.builds(BufferSet, sku=st.just("A"), buffer=st.integers(0, 10)),
    st.builds(ReturnRecorded, sku=st.just("A"), quantity=st.integers(1, 5),
              disposition=st.sampled_from(["SELLABLE", "DAMAGED", "UNSELLABLE", "DEFECTIVE", "MISSING"]),
              order_id=st.none() | st.just("#1"), restocked=st.booleans()),
    st.builds(StockBroadcast, sku=st.just("A"), count=st.integers(0, 100), tx_id=st.sampled_from(["tx-1", "tx-2"])),
    st.builds(ShopifyLevelReported, sku=st.just("A"), inventory_item_id=st.sampled_from(["1", "2"]),
              location_id=st.sampled_from(["7", "8"]), available=st.none() | st.integers(-3, 50),
              updated_at=st.sampled_from(["2025-01-01T00:00:01.000000Z", "2025-01-01T00:00:02.000000Z"]),
              counted=st.booleans()),
    st.builds(ShopifyPushPlanned, sku=st.just("A"), push_id=st.sampled_from(["p1", "p2"]),
              inventory_item_id=st.sampled_from(["1", "2"]), location_id=st.just("7"), quantity=st.integers(0, 50),
              compare_quantity=st.none() | st.integers(0, 50), total=st.integers(0, 60),
              drift=st.none() | st.integers(-5, 5), drift_at=st.none() | st.just("2025-01-01T00:00:01.000000Z")),
    st.builds(ShopifyPushSettled, sku=st.just("A"), push_id=st.sampled_from(["p1", "p2"]),
              outcome=st.sampled_from(["applied", "already_applied", "failed"]),
              quantity=st.none() | st.integers(0, 50), attempts=st.integers(1, 3)),
    st.builds(ShopifyItemLinked, sku=st.just("A"), inventory_item_id=st.sampled_from(["1", "2"]),
              variant_id=st.none() | st.just("11"), source=st.just("products")),
    st.builds(ShopifyItemUnlinked, sku=st.just("A"), inventory_item_id=st.sampled_from(["1", "2"]),
              source=st.just("products")),
)
PROPERTY_VIEWS = {
    "pending-errors": ("order:o1", order_events),
    "delivery-status": ("delivery:s1:m1", delivery_events),
    "alerts": ("alert:a1", alert_events),
    "inventory": ("sku:A", inventory_events),
}


def test_every_view_has_a_property_strategy():
    assert set(PROPERTY_VIEWS) == set(VIEWS_BY_NAME)


@st.composite
def view_history(draw: Any, name: str) -> tuple[str, list[RecordedEvent], list[int]]:
    stream, events = PROPERTY_VIEWS[name]
    datas = draw(st.lists(events, max_size=12))
    gaps = draw(st.lists(st.integers(0, 10**9), min_size=len(datas), max_size=len(datas)))  # microseconds
    at, recorded_events = T0, []
    for version, (data, gap) in enumerate(zip(datas, gaps, strict=True), 1):
        at += timedelta(microseconds=gap)
        recorded_events.append(recorded(stream, version, data, at))
    cuts = draw(st.lists(st.integers(0, len(datas)), max_size=4, unique=True))
    return stream, recorded_events, sorted(cuts)


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(PROPERTY_VIEWS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_fold_is_deterministic_and_rows_round_trip(name, data):
    view = VIEWS_BY_NAME[name]
    stream, events, _ = data.draw(view_history(name))
    key = stream.split(":", 1)[1]
    first, second = view.fold(key, events), view.fold(key, list(events))
    assert first == second
    rows = dict(view.rows(first))
    assert typed(rows) == typed(dict(view.rows(second)))
    assert view.extras(first) == view.extras(second)

    loaded = view.load(key, through_store(rows))
    assert loaded == comparable(first)
    assert typed(dict(view.rows(loaded))) == typed(rows)
    # what the store compares to decide which rows to rewrite: an unchanged row is not rewritten
    assert through_store(dict(view.rows(loaded))) == through_store(rows)


@pytest.mark.parametrize("name", sorted(PROPERTY_VIEWS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_folding_in_reloaded_segments_equals_one_straight_fold(name, data):
    """Live processing: each batch folds on top of what the store loaded; replay folds straight."""
    view = VIEWS_BY_NAME[name]
    stream, events, cuts = data.draw(view_history(name))
    key = stream.split(":", 1)[1]
    straight = view.fold(key, events)

    state, extras, start = view.initial(key), [], 0
    for end in [*cuts, len(events)]:
        state = view.fold(key, events[start:end], state)
        extras.extend(view.extras(state))
        state = reload(view, key, state)
        start = end
    assert typed(dict(view.rows(state))) == typed(dict(view.rows(straight)))
    assert tuple(extras) == view.extras(straight)


# ----------------------------------------------------------------------------- registry

def test_registry_maps_names_and_stream_categories():
    assert [view.name for view in VIEWS] == ["inventory", "pending-errors", "delivery-status", "alerts"]
    assert VIEWS_BY_NAME["pending-errors"] is PendingErrorsProjection
    assert view_for_stream("sku:PROD-1") is InventoryProjection
    assert view_for_stream("order:abc") is PendingErrorsProjection
    assert view_for_stream("delivery:s1:m1") is DeliveryStatusProjection
    assert view_for_stream("alert:a1") is AlertsProjection
    assert view_for_stream("nope:x") is None and view_for_stream("sku") is None
    assert len({view.category for view in VIEWS}) == len(VIEWS)
    assert {view.category for view in VIEWS} <= catalogue.CATEGORIES


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_views_match_their_tables(view):
    expected = {
        "inventory": ("inventory", "sku", "sku", None),
        "pending-errors": ("pending-errors", "order", "order_id", "error_hash"),
        "delivery-status": ("delivery-status", "delivery", "delivery_id", None),
        "alerts": ("alerts", "alert", "alert_id", None),
    }[view.name]
    assert (view.table, view.category, view.key_attr, view.sort_attr) == expected


# ----------------------------------------------------------------------------- purity

FOLD_MODULES = ["projections.inventory", "projections.pending_errors", "projections.delivery_status",
                "projections.alerts", "projections.registry"]
LOCAL_PACKAGES = ("events", "projections")
CLOCK_CALLS = {"now", "utcnow", "today", "time_ns", "monotonic", "perf_counter"}


def _source(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(_source(module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            for alias in node.names:  # `from events import alerts` imports a module too
                candidate = f"{node.module}.{alias.name}"
                if candidate.split(".")[0] in LOCAL_PACKAGES and _source(candidate).exists():
                    found.add(candidate)
    return found


@pytest.mark.parametrize("module", FOLD_MODULES)
def test_folds_never_import_boto3_even_indirectly(module):
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for imported in _imports(current):
            root = imported.split(".")[0]
            assert root not in ("boto3", "botocore"), f"{current} imports {imported} (reached from {module})"
            if root in LOCAL_PACKAGES and _source(imported).exists():
                todo.append(imported)


@pytest.mark.parametrize("module", FOLD_MODULES[:-1])
def test_folds_read_no_clock(module):
    tree = ast.parse(_source(module).read_text(encoding="utf-8"))
    assert not {"time", "random", "uuid", "os"} & {i.split(".")[0] for i in _imports(module)}
    calls = {node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert not calls & CLOCK_CALLS
