"""Raising an alert: one `alerts.raised` event on the alert's own stream, appended once.

Shared by every function that raises alerts (the reactor's rules, the stream failure consumer),
so "raised once" means the same thing everywhere: the alert id names the stream and the
idempotency key, and a second raise of the same id changes nothing.
"""

from __future__ import annotations

from events.alerts import AlertRaised, AlertRead
from events.envelope import NewEvent, PlannedAppend, RecordedEvent
from events.errors import IdempotencyKeyReused, NotFound, VersionConflict
from events.ports import EventLog
from events.store import NO_STREAM
from processors.telemetry.emf import count_by

ALERT_RAISED = "dynafold.alerts.raised.v1"
ALERT_READ = "dynafold.alerts.read.v1"


def append_alert(store: EventLog, alert: AlertRaised, service: str, cause: RecordedEvent | None = None) -> bool:
    """Append the alert once; True when this call raised it, False when it already was.

    ``service`` is the raising function (the event's source and the metric's service dimension)."""
    new = NewEvent(ALERT_RAISED, alert, source=f"urn:dynafold:{service}",
                   correlation_id=cause.correlation_id if cause else None,
                   causation_id=cause.id if cause else None)
    try:
        result = store.append(f"alert:{alert.alert_id}", [new], NO_STREAM, idempotency_key=f"alert:{alert.alert_id}")
    except VersionConflict:
        return False  # raised before and its idempotency guard has expired: still raised once
    except IdempotencyKeyReused:
        # An alert whose id names its subject, not one cause (unmapped_item: one per item), raised
        # before by another cause: the same alert, already raised. Not a failed record.
        return False
    if result.deduplicated:
        return False
    count_by("AlertsRaised", service, {"severity": alert.severity})
    return True


def read_plan(store: EventLog, alert_id: str, *, read_by: str | None, source: str,
              correlation_id: str | None) -> tuple[PlannedAppend | None, int]:
    """What marks an alert read: (the append, the version it is conditional on), or (None, version)
    when it is read already (marking it again changes nothing). NotFound when it was never raised.
    Shared by the admin route and the console, which each append it their own way."""
    from projections.alerts import AlertsProjection

    stream = f"alert:{alert_id}"
    events = store.read_stream(stream)
    if not events:
        raise NotFound(f"alert {alert_id!r}")
    if AlertsProjection.fold(alert_id, events).read:
        return None, events[-1].version
    event = NewEvent(ALERT_READ, AlertRead(alert_id=alert_id, read_by=read_by), source=source,
                     correlation_id=correlation_id)
    return PlannedAppend(stream, (event,)), events[-1].version
