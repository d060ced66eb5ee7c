"""A realistic sample history drawn from the seeds' scenarios, for the demo and for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from events.envelope import NewEvent

SOURCE = "urn:dynafold:demo"


@dataclass(frozen=True)
class SampleAppend:
    stream: str
    events: tuple[NewEvent, ...]
    idempotency_key: str


def _event(event_type: str, data: dict, at: datetime, correlation: str) -> NewEvent:
    return NewEvent(type=f"dynafold.{event_type}", data=data, source=SOURCE, time=at, correlation_id=correlation)


def sample_history(start: datetime | None = None) -> list[SampleAppend]:
    """Seeds 000 (order errors), 001/002 (deliveries) and 004 (inventory, alerts), in time order.

    By default the story starts an hour ago: the pending-errors view keeps rows for 7 days after
    detection (TTL), and DynamoDB Local really deletes expired rows.
    """
    t0 = start or (datetime.now(timezone.utc) - timedelta(hours=1)).replace(second=0, microsecond=0)

    def at(minutes: float) -> datetime:
        return t0 + timedelta(minutes=minutes)

    tuk_error = {
        "error_hash": "d3f1c0a4e5b6",
        "rule": "discount_on_tuk_item",
        "severity": "error",
        "message": "TUK item has 10% discount",
        "details": {"line": 1, "item": "TUK-CHAIR", "discount_percent": 10},
    }
    remark_error = {
        "error_hash": "9b2e77aa01cd",
        "rule": "discount_remark",
        "severity": "error",
        "message": "Discounted order has no discount remark",
        "details": {},
    }
    order_a = {"order_id": "6ce880f5-47cd-4979-87ce-e5b5fa6af1f4", "order_number": "SO-000019"}
    order_b = {"order_id": "0b7d2a61-1c55-4b9e-a3f6-2f0f5a1e9c10", "order_number": "SO-000020"}
    webhook = "https://hooks.example.com/orders"
    return [
        SampleAppend("order:" + order_a["order_id"], (
            _event("orders.validated.v1", {**order_a, "errors": [tuk_error, remark_error],
                                           "order": {**order_a, "lines": [{"sku": "TUK-CHAIR", "discount_percent": 10}]}},
                   at(0), "req-inflow-1"),), "inflow-delivery-1"),
        SampleAppend("order:" + order_b["order_id"], (
            _event("orders.validated.v1", {**order_b, "errors": [tuk_error],
                                           "order": {**order_b, "lines": [{"sku": "TUK-CHAIR", "discount_percent": 10}]}},
                   at(2), "req-inflow-2"),), "inflow-delivery-2"),
        # Order A is fixed in part inside the grace period: the remark error clears.
        SampleAppend("order:" + order_a["order_id"], (
            _event("orders.validated.v1", {**order_a, "errors": [tuk_error],
                                           "order": {**order_a, "remark": "staff discount",
                                                     "lines": [{"sku": "TUK-CHAIR", "discount_percent": 10}]}},
                   at(12), "req-inflow-3"),), "inflow-delivery-3"),
        SampleAppend("order:" + order_b["order_id"], (
            _event("orders.errors_notified.v1", {"order_id": order_b["order_id"], "error_hashes": ["d3f1c0a4e5b6"],
                                                 "channel": "email"}, at(32), "monitor-run-7"),), "notify-b-1"),
        SampleAppend("delivery:user123:msg-0001", (
            _event("delivery.message_received.v1", {"sender_id": "user123", "message_id": "msg-0001",
                                                    "target_url": webhook, "payload": {"event": "order.paid"}},
                   at(1), "req-msg-1"),), "user123:msg-0001"),
        SampleAppend("delivery:user123:msg-0001", (
            _event("delivery.attempted.v1", {"attempt": 1, "success": False, "category": "SERVER_ERROR",
                                             "retryable": True, "status_code": 500, "response_time_ms": 2500.0,
                                             "error": "Internal Server Error"}, at(1.1), "req-msg-1"),
            _event("delivery.retry_scheduled.v1", {"attempt": 1, "next_retry_at": at(1.2).isoformat(),
                                                   "delay_seconds": 1.25, "exponential_delay": 1.0, "jitter": 0.25},
                   at(1.1), "req-msg-1"),
        ), "user123:msg-0001:attempt-1"),
        SampleAppend("delivery:user123:msg-0001", (
            _event("delivery.attempted.v1", {"attempt": 2, "success": True, "category": "SUCCESS",
                                             "status_code": 200, "response_time_ms": 180.0}, at(1.3), "req-msg-1"),
            _event("delivery.succeeded.v1", {"attempt": 2, "status_code": 200, "response_time_ms": 180.0},
                   at(1.3), "req-msg-1"),
        ), "user123:msg-0001:attempt-2"),
        SampleAppend("sku:PROD-001", (
            _event("inventory.physical_count_set.v1", {"sku": "PROD-001", "physical": 50, "source": "count"},
                   at(3), "req-count-1"),
            _event("inventory.buffer_set.v1", {"sku": "PROD-001", "buffer": 5}, at(3), "req-count-1"),
        ), "count-PROD-001"),
        SampleAppend("sku:PROD-001", (
            _event("inventory.stock_adjusted.v2", {"sku": "PROD-001", "delta": -2, "reason": "order",
                                                   "tx_id": "shopify-order-1001", "order_id": "1001"},
                   at(5), "shopify-wh-1"),), "shopify-wh-1"),
        SampleAppend("sku:PROD-001", (
            _event("inventory.return_recorded.v1", {"sku": "PROD-001", "quantity": 1, "disposition": "DAMAGED",
                                                    "order_id": "1001", "restocked": False},
                   at(9), "shopify-wh-2"),), "shopify-wh-2"),
        SampleAppend("sku:PROD-002", (
            _event("inventory.physical_count_set.v1", {"sku": "PROD-002", "physical": 4, "source": "count"},
                   at(4), "req-count-2"),), "count-PROD-002"),
    ]
