"""The alerts view (seeds 003, 004): one row per alert, with its read flag.

``AlertRaised`` creates the alert; ``AlertRead`` marks it read (read_at = the event's time).
``unread = "UNREAD#<bucket>"`` while unread and absent once read: the partition key of the sparse
``by-unread`` index, so "unread critical alerts" never scans. Sharded (``UNREAD_INDEX``): every alert
raised writes that one key value, and a key value takes at most 1,000 writes a second.

Decisions: an alert is immutable once raised (a second ``AlertRaised`` on its stream changes
nothing); the first read wins (a second ``AlertRead`` keeps read_at/read_by); a read of an alert
that was never raised is ignored (there is no row to mark).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import get_args

from events.alerts import AlertRaised, AlertRead, AlertType
from events.envelope import RecordedEvent, format_time
from events.sharding import ShardedKey
from projections.view import View, ViewRow, single_row_view

UNREAD = "UNREAD"
SEVERITIES = ("info", "warning", "critical")
ALERT_TYPES: tuple[str, ...] = get_args(AlertType)
# Bucket from the alert id. legacy: rows a deployed table got before the key was sharded hold the
# bare "UNREAD" until the family is rebuilt (or the alert is read), and the questions read it too.
UNREAD_INDEX = ShardedKey("by-unread", "unread", "time", buckets=4, legacy=True)


@dataclass(frozen=True, kw_only=True)
class Alert(ViewRow):
    """One alert: the fold's state, the stored row (plus ``unread``) and what the alert queries return."""

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

    derived = ("unread",)
    sharded = (UNREAD_INDEX,)

    @property
    def unread(self) -> str | None:
        """"UNREAD#<bucket>" only while unread: the partition key of the sparse by-unread index."""
        return None if self.read else UNREAD_INDEX.value(UNREAD, (self.alert_id,))

    @property
    def is_unread(self) -> bool:
        return not self.read


def initial(alert_id: str) -> Alert:
    return Alert(alert_id=alert_id)


def apply(state: Alert, event: RecordedEvent) -> Alert:
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


AlertsProjection: View[Alert] = single_row_view(
    name="alerts",
    table="alerts",
    category="alert",
    key_attr="alert_id",
    row_type=Alert,
    initial=initial,
    apply=apply,
    shown=lambda state: state.time is not None,
)
