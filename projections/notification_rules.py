"""The error monitor's decisions (seed 000), pure: which errors are due, and what to append and send.

An order's errors get a grace period (30 minutes by default) from first detection. When it is
over, the monitor re-validates the order from its latest data: errors fixed meanwhile are
dropped (a fresh ``order validated``), and if any expired error remains, one email lists them.

Exactly one email per set of errors, with monitors racing and sends failing:
- the monitor *claims* the notification by appending ``notification claimed`` at the order
  stream's version it read, so of two monitors that read the same state one claim conflicts;
- a claim is open until ``errors notified`` (sent) or ``notification failed`` (retried by the
  next run with the next attempt number) follows it; an open claim holds other monitors off
  for its lease, and only a claim whose monitor died is taken over after it.

The order's state comes from the same fold the pending-errors view uses, so the monitor and
the view agree on what is pending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from events.envelope import RecordedEvent
from events.orders import NotificationClaimed, NotificationFailed, OrderError, OrderErrorsNotified, OrderValidated
from projections.pending_errors import PendingError, PendingErrorsProjection, PendingErrorsState

OPEN, FAILED, SENT = "open", "failed", "sent"


@dataclass(frozen=True, slots=True)
class Claim:
    notification_id: str
    error_hashes: tuple[str, ...]
    attempt: int
    claimed_at: datetime
    lease: timedelta
    outcome: str = OPEN


@dataclass(frozen=True, slots=True)
class OrderNotificationState:
    pending: PendingErrorsState
    claims: Mapping[str, Claim] = field(default_factory=dict)  # notification id -> its latest claim
    version: int = 0


def fold_order(order_id: str, events: Sequence[RecordedEvent]) -> OrderNotificationState:
    pending = PendingErrorsProjection.fold(order_id, list(events))
    claims: dict[str, Claim] = {}
    for event in events:
        data = event.data
        if isinstance(data, NotificationClaimed):
            claims[data.notification_id] = Claim(data.notification_id, tuple(data.error_hashes), data.attempt,
                                                 event.time, timedelta(seconds=data.lease_seconds))
        elif isinstance(data, NotificationFailed) and data.notification_id in claims:
            claims[data.notification_id] = replace(claims[data.notification_id], outcome=FAILED)
        elif isinstance(data, OrderErrorsNotified) and data.notification_id in claims:
            claims[data.notification_id] = replace(claims[data.notification_id], outcome=SENT)
    return OrderNotificationState(pending, claims, events[-1].version if events else 0)


def expired_errors(state: OrderNotificationState, now: datetime, grace: timedelta) -> dict[str, PendingError]:
    """Pending errors first detected at least ``grace`` ago."""
    cutoff = now - grace
    return {h: e for h, e in state.pending.errors.items() if datetime.fromisoformat(e.first_detected) <= cutoff}


def claim_in_progress(state: OrderNotificationState, now: datetime) -> Claim | None:
    """An open claim whose lease has not run out: another monitor is sending right now."""
    return next((c for c in state.claims.values() if c.outcome == OPEN and c.claimed_at + c.lease > now), None)


def notification_id(order_id: str, errors: Mapping[str, PendingError]) -> str:
    """Stable per (order, error set, detection of each error): an error fixed and reintroduced is a new
    episode with a new first detection, so its email is a new notification whose record is not a
    reused idempotency key (issue 12 defect 2)."""
    parts = [f"{h}@{errors[h].first_detected}" for h in sorted(errors)]
    return hashlib.sha256("\n".join([order_id, *parts]).encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class NotificationPlan:
    revalidated: OrderValidated | None  # append first: the current error set differs from the pending one
    notify: tuple[OrderError, ...]  # expired errors still present: the one email lists them
    notification_id: str | None = None
    attempt: int = 0


def plan_notification(state: OrderNotificationState, order: Mapping[str, object], order_number: str,
                      current: Sequence[OrderError], now: datetime, grace: timedelta) -> NotificationPlan:
    """What to do for an order whose errors may have expired, given its re-validated error set."""
    current_by_hash = {e.error_hash: e for e in current}
    revalidated = None
    # Errors already emailed and still reported are part of the known set: not a change.
    if set(current_by_hash) != set(state.pending.errors) | set(state.pending.notified):
        customer = order.get("customer_id")
        revalidated = OrderValidated(order_id=state.pending.order_id, order_number=order_number,
                                     errors=tuple(current_by_hash[h] for h in sorted(current_by_hash)),
                                     order=dict(order), customer_id=customer if isinstance(customer, str) else None)
    expired = expired_errors(state, now, grace)
    still = sorted(set(expired) & set(current_by_hash))
    if not still:
        return NotificationPlan(revalidated, ())
    nid = notification_id(state.pending.order_id, {h: expired[h] for h in still})
    previous = state.claims.get(nid)
    return NotificationPlan(revalidated, tuple(current_by_hash[h] for h in still), nid,
                            1 if previous is None else previous.attempt + 1)


def email_text(order_id: str, order_number: str, errors: Sequence[OrderError],
               first_detected: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body) of the one email for an order's expired errors."""
    label = order_number or order_id
    subject = f"Order {label}: {len(errors)} unresolved error{'s' if len(errors) != 1 else ''}"
    lines = [f"Order {label} (id {order_id}) still has these errors after its grace period:", ""]
    for error in errors:
        lines.append(f"- [{error.severity}] {error.rule}: {error.message}")
        if error.error_hash in first_detected:
            lines.append(f"  first detected {first_detected[error.error_hash]}")
    lines += ["", "Fix them in InFlow; this is the only email about these errors."]
    return subject, "\n".join(lines)
