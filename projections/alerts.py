"""The alerts view (seeds 003, 004): one row per alert, with its read flag.

``AlertRaised`` creates the alert; ``AlertRead`` marks it read (read_at = the event's time).
``unread = "UNREAD"`` while unread and absent once read: the partition key of the sparse
``by-unread`` index, so "unread critical alerts" never scans.

Decisions: an alert is immutable once raised (a second ``AlertRaised`` on its stream changes
nothing); the first read wins (a second ``AlertRead`` keeps read_at/read_by); a read of an alert
that was never raised is ignored (there is no row to mark).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from events.alerts import AlertRaised, AlertRead
from events.envelope import RecordedEvent, format_time
from projections.view import Row, View

UNREAD = "UNREAD"


@dataclass(frozen=True, slots=True)
class AlertState:
    alert_id: str
    alert_type: str | None = None
    severity: str | None = None
    subject: str | None = None
    sku: str | None = None
    message: str | None = None
    time: str | None = None  # when it was raised; None = not raised (no row)
    read: bool = False
    read_at: str | None = None
    read_by: str | None = None
    cause_event_id: str | None = None


def initial(alert_id: str) -> AlertState:
    return AlertState(alert_id=alert_id)


def apply(state: AlertState, event: RecordedEvent) -> AlertState:
    data = event.data
    at = format_time(event.time)
    if isinstance(data, AlertRaised):
        if state.time is not None:
            return state
        return replace(state, alert_type=data.alert_type, severity=data.severity, subject=data.subject,
                       sku=data.sku, message=data.message, time=at, cause_event_id=data.cause_event_id)
    if isinstance(data, AlertRead):
        if state.time is None or state.read:
            return state
        return replace(state, read=True, read_at=at, read_by=data.read_by)
    return state


def rows(state: AlertState) -> Mapping[str | None, Row]:
    if state.time is None:
        return {}
    return {None: {
        "alert_type": state.alert_type,
        "severity": state.severity,
        "subject": state.subject,
        "sku": state.sku,
        "message": state.message,
        "time": state.time,
        "read": state.read,
        "read_at": state.read_at,
        "read_by": state.read_by,
        "cause_event_id": state.cause_event_id,
        "unread": None if state.read else UNREAD,
    }}


def load(alert_id: str, stored: Mapping[str | None, Row]) -> AlertState:
    row = stored.get(None)
    if row is None:
        return initial(alert_id)
    return AlertState(
        alert_id=alert_id,
        alert_type=row.get("alert_type"),
        severity=row.get("severity"),
        subject=row.get("subject"),
        sku=row.get("sku"),
        message=row.get("message"),
        time=row["time"],
        read=bool(row.get("read", False)),
        read_at=row.get("read_at"),
        read_by=row.get("read_by"),
        cause_event_id=row.get("cause_event_id"),
    )


AlertsProjection: View[AlertState] = View(
    name="alerts",
    table="alerts",
    category="alert",
    key_attr="alert_id",
    sort_attr=None,
    initial=initial,
    apply=apply,
    rows=rows,
    load=load,
)
