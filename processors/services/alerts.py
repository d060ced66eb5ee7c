"""Raising an alert: one `alerts.raised` event on the alert's own stream, appended once.

Shared by every function that raises alerts (the reactor's rules, the stream failure consumer),
so "raised once" means the same thing everywhere: the alert id names the stream and the
idempotency key, and a second raise of the same id changes nothing.
"""

from __future__ import annotations

from events.alerts import AlertRaised
from events.envelope import Cause, NewEvent
from events.errors import IdempotencyKeyReused, VersionConflict
from events.ports import EventLog
from events.store import NO_STREAM
from processors.telemetry.emf import count_by

ALERT_RAISED = "dynafold.alerts.raised.v1"


def append_alert(store: EventLog, alert: AlertRaised, service: str, cause: Cause | None = None) -> bool:
    """Append the alert once; True when this call raised it, False when it already was.

    ``service`` is the raising function (the event's source and the metric's service dimension);
    ``cause`` the event that called for it (its causation and correlation)."""
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
