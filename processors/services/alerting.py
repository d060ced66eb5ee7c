"""Raising an alert: the one alert-appending path of every service (reactor, error monitor).

An alert is the first event of its own stream ``alert:<alert_id>``, appended at NO_STREAM with the
idempotency key ``alert:<alert_id>``. The id derives from the alert's cause, so raising it again
(a redelivered record, a re-run monitor) appends nothing: at-least-once callers, one alert.
"""

from __future__ import annotations

from events.alerts import AlertRaised
from events.envelope import NewEvent, RecordedEvent
from events.errors import VersionConflict
from events.store import NO_STREAM, EventStore
from processors.telemetry.emf import count_by


def raise_alert(store: EventStore, alert: AlertRaised, *, source: str, service: str,
                cause: RecordedEvent | None = None) -> bool:
    """Append the alert once; True when this call raised it, False when it already was."""
    new = NewEvent("dynafold.alerts.raised.v1", alert, source=source,
                   correlation_id=cause.correlation_id if cause else None,
                   causation_id=cause.id if cause else None)
    try:
        result = store.append(f"alert:{alert.alert_id}", [new], NO_STREAM, idempotency_key=f"alert:{alert.alert_id}")
    except VersionConflict:
        return False  # raised before and its idempotency guard has expired: still raised once
    if result.deduplicated:
        return False
    count_by("AlertsRaised", service, {"severity": alert.severity})
    return True
