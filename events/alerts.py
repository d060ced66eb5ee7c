"""Merchant and operator alerts (seeds 003, 004)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.schema_base import EventData

AlertType = Literal[
    "stock_low",
    "return_damaged",
    "sync_failed",
    "delivery_dead_lettered",
    "order_errors_notified",
    "record_failed",
    "unmapped_item",
    "sync_drift",
    "uncounted_sku",  # Shopify lists a SKU never counted here: nothing is pushed for it
    "notification_unconfigured",  # an order-error notice given as an alert: no email settings
]
Severity = Literal["info", "warning", "critical"]


class AlertRaised(EventData):
    alert_id: str = Field(min_length=1)
    alert_type: AlertType
    severity: Severity
    subject: str = Field(min_length=1, description="the stream the alert is about")
    sku: str | None = None
    message: str
    cause_event_id: str | None = None


class AlertRead(EventData):
    alert_id: str = Field(min_length=1)
    read_by: str | None = None
