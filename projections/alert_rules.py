"""Which alerts an event calls for. Pure decisions; the reactor appends what they return.

Each alert's id derives from its cause, so a re-run reactor raises the same alert, and the
cause event id is the append's idempotency key: at-least-once delivery, one alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from events.alerts import AlertRaised, AlertType, Severity
from events.deliveries import DeadLettered
from events.envelope import RecordedEvent
from events.inventory import ReturnRecorded
from events.orders import OrderErrorsNotified
from projections.inventory import InventoryState

_ALERT_NAMESPACE = uuid.UUID("5b0c3c2e-9f5e-4d0e-9a57-2f1d6f0c8a11")


@dataclass(frozen=True)
class AlertSettings:
    low_stock_threshold: int = 5
    per_sku_thresholds: Mapping[str, int] = field(default_factory=dict)

    def threshold(self, sku: str) -> int:
        return self.per_sku_thresholds.get(sku, self.low_stock_threshold)


def alert_id(alert_type: str, cause_event_id: str) -> str:
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{alert_type}:{cause_event_id}"))


def _alert(alert_type: AlertType, severity: Severity, event: RecordedEvent, message: str,
           sku: str | None = None) -> AlertRaised:
    return AlertRaised(
        alert_id=alert_id(alert_type, event.id), alert_type=alert_type, severity=severity,
        subject=event.stream, sku=sku, message=message, cause_event_id=event.id,
    )


def record_failed_alert(consumer: str, failure: Mapping[str, Any]) -> AlertRaised:
    """The alert for a stream batch a consumer gave up on (an on-failure destination record). Its
    id derives from the batch, so reading the destination again raises nothing twice."""
    info = failure.get("DDBStreamBatchInfo", {})
    cause = f"{consumer}:{info.get('shardId')}:{info.get('startSequenceNumber')}"
    condition = failure.get("requestContext", {}).get("condition")
    return AlertRaised(
        alert_id=alert_id("record_failed", cause), alert_type="record_failed", severity="critical",
        subject=f"consumer:{consumer}",
        message=(f"{consumer} gave up on {info.get('batchSize')} record(s) from sequence "
                 f"{info.get('startSequenceNumber')} ({condition}): {failure.get('error', '')}")[:1000],
    )


def alerts_for(
    event: RecordedEvent,
    settings: AlertSettings,
    before: InventoryState | None = None,
    after: InventoryState | None = None,
) -> list[AlertRaised]:
    """The alerts one event raises. For SKU events, ``before``/``after`` are the inventory state
    around it: stock_low fires when available crosses down to the threshold, not on every event below it."""
    data = event.data
    raised = []
    if isinstance(data, ReturnRecorded) and data.disposition != "SELLABLE":
        raised.append(_alert("return_damaged", "warning", event,
                             f"{data.quantity} x {data.sku} returned {data.disposition.lower()}"
                             + (f" (order {data.order_id})" if data.order_id else ""), sku=data.sku))
    if before is not None and after is not None:
        limit = settings.threshold(after.sku)
        if after.available <= limit < before.available or (after.available <= limit and before.updated_at is None):
            raised.append(_alert("stock_low", "critical" if after.available == 0 else "warning", event,
                                 f"{after.sku}: {after.available} available (threshold {limit})", sku=after.sku))
    if isinstance(data, DeadLettered):
        raised.append(_alert("delivery_dead_lettered", "critical", event,
                             f"delivery {event.stream.split(':', 1)[1]} dead-lettered after {data.attempts} "
                             f"attempts: {data.reason}"))
    if isinstance(data, OrderErrorsNotified):
        raised.append(_alert("order_errors_notified", "info", event,
                             f"order {data.order_id}: {len(data.error_hashes)} error(s) notified by {data.channel}"))
    return raised
