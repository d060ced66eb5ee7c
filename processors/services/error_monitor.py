"""The error monitor (seed 000): every 5 minutes, one email per order whose errors outlived the grace period.

Scheduled by EventBridge on AWS and by a clock in the local stack. It asks the pending-errors
view which errors were first detected before now - grace (an index query, never a scan), then
decides per order from the order's own stream (the authoritative state): re-validate, claim,
send, record. See ``projections.notification_rules`` for why that sends one email per error set
even with two monitors running and sends failing.

Everything it appends keeps its cause: a re-validation follows the order's latest validation, the
claim follows that, and the email (or the alert given instead, or the failed send) follows the
claim, each with the correlation of the InFlow request, so the email traces back to it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from events.envelope import Cause, CauseRef, NewEvent, RecordedEvent
from events.errors import VersionConflict
from events.order_rules import Rule, rule_set, validate_order
from events.orders import NotificationClaimed, NotificationFailed, OrderErrorsNotified, OrderValidated
from events.ports import EventLog
from events.store import ANY
from processors.telemetry.logs import make_logger
from processors.adapters.mailers import MailUnconfigured, Mailer
from processors.services.alerts import append_alert
from projections.notification_rules import (
    claim_in_progress,
    email_text,
    expired_errors,
    fold_order,
    plan_notification,
)

if TYPE_CHECKING:  # built by the composition root on the first invocation
    from processors.adapters.order_sources import OrderSource
    from projections.queries import ViewQueries

SERVICE = "error-monitor"
SOURCE = f"urn:dynafold:{SERVICE}"
SCHEDULE_SOURCE, SCHEDULE_DETAIL_TYPE = "aws.events", "Scheduled Event"  # what an EventBridge schedule sends
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
logger = make_logger(SERVICE)
metrics = Metrics(namespace=NAMESPACE, service="error-monitor")


@dataclass(frozen=True)
class MonitorSettings:
    grace: timedelta = timedelta(minutes=30)
    lease: timedelta = timedelta(minutes=5)
    rules: tuple[Rule, ...] = field(default_factory=rule_set)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "MonitorSettings":
        disabled = [name.strip() for name in env.get("DYNAFOLD_DISABLED_RULES", "").split(",") if name.strip()]
        return cls(grace=timedelta(minutes=float(env.get("DYNAFOLD_GRACE_PERIOD_MINUTES", "30"))),
                   lease=timedelta(seconds=float(env.get("DYNAFOLD_NOTIFICATION_LEASE_SECONDS", "300"))),
                   rules=rule_set(disabled))


class ErrorMonitor:
    def __init__(self, store: EventLog, queries: ViewQueries, orders: OrderSource, mailer: Mailer | MailUnconfigured,
                 settings: MonitorSettings = MonitorSettings(),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._store = store
        self._queries = queries
        self._orders = orders
        self._mailer = mailer
        self._settings = settings
        self._clock = clock

    def run(self) -> Counter[str]:
        """One pass over the orders with errors past the grace period; outcome -> orders."""
        now = self._clock()
        due = sorted({row.order_id for row in self._queries.pending_errors.detected_before(now - self._settings.grace)})
        outcomes: Counter[str] = Counter()
        for order_id in due:
            try:
                outcomes[self.check_order(order_id, now)] += 1
            except Exception:  # one order's trouble must not starve the others
                logger.exception("order check failed; retried next run", extra={"order_id": order_id})
                outcomes["failed"] += 1
        return outcomes

    def check_order(self, order_id: str, now: datetime) -> str:
        stream = f"order:{order_id}"
        history = self._store.read_stream(stream)
        state = fold_order(order_id, history)
        if not expired_errors(state, now, self._settings.grace):
            return "not_due"  # the view lagged the log: resolved or notified meanwhile
        if claim_in_progress(state, now):
            return "claimed_elsewhere"
        order = self._orders.latest(order_id, history)
        if order is None:
            logger.warning("order source no longer has the order; errors stay pending", extra={"order_id": order_id})
            return "order_missing"
        current = validate_order(order, self._settings.rules)
        plan = plan_notification(state, order.model_dump(mode="json"), order.order_number, current, now,
                                 self._settings.grace)
        version = state.version
        cause: Cause | None = _latest_validation(history)
        try:
            if plan.revalidated is not None:
                revalidated = self._append(stream, "dynafold.orders.validated.v1", plan.revalidated, version,
                                           cause=cause)
                version = revalidated.last_version
                cause = _appended(revalidated, cause)
            if not plan.notify:
                return "resolved"
            if plan.notification_id is None:  # plan_notification names the notification it plans
                raise ValueError(f"order {order_id}: a notification planned without an id")
            claim = NotificationClaimed(order_id=order_id, notification_id=plan.notification_id,
                                        error_hashes=tuple(e.error_hash for e in plan.notify), attempt=plan.attempt,
                                        lease_seconds=max(1, int(self._settings.lease.total_seconds())))
            claimed = self._append(stream, "dynafold.orders.notification_claimed.v1", claim, version,
                                   key=f"notify:{plan.notification_id}:{plan.attempt}", cause=cause)
        except VersionConflict:
            return "lost_race"  # another monitor acted on this order first; the next run looks again
        if claimed.deduplicated:
            return "lost_race"
        return self._send(stream, order_id, order.order_number, plan.notify, plan.notification_id, plan.attempt, state,
                          _appended(claimed, cause))

    def _send(self, stream: str, order_id: str, order_number: str, errors: Any, nid: str, attempt: int,
              state: Any, claim: Cause | None) -> str:
        first = {h: e.first_detected for h, e in state.pending.errors.items()}
        subject, body = email_text(order_id, order_number, errors, first)
        if isinstance(self._mailer, MailUnconfigured):
            return self._alert_instead(stream, order_id, subject, errors, nid, self._mailer.reason, claim)
        try:
            message_ref = self._mailer.send(subject, body)
        except Exception as error:  # noqa: BLE001 - recorded; the next run retries the send
            logger.warning("email failed; retried next run", extra={"order_id": order_id, "error": str(error)[:300]})
            self._append(stream, "dynafold.orders.notification_failed.v1",
                         NotificationFailed(order_id=order_id, notification_id=nid, attempt=attempt,
                                            error=f"{type(error).__name__}: {error}"[:1000]),
                         ANY, key=f"notify-failed:{nid}:{attempt}", cause=claim)
            metrics.add_metric(name="EmailsFailed", unit=MetricUnit.Count, value=1)
            return "send_failed"
        # Keyed by the attempt, as its claim is: each send is its own record. A record whose guard was
        # written but not its event (a fault between the two writes) is never finished by a later
        # send, whose message_ref differs: under one key per notification that key was taken for
        # good and every later run sent the email again, refused as a reused key.
        self._append(stream, "dynafold.orders.errors_notified.v1",
                     OrderErrorsNotified(order_id=order_id, error_hashes=tuple(e.error_hash for e in errors),
                                         channel=self._mailer.channel, message_ref=message_ref, notification_id=nid),
                     ANY, key=f"notified:{nid}:{attempt}", cause=claim)
        metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="PendingErrorsNotified", unit=MetricUnit.Count, value=len(errors))
        logger.info("errors notified", extra={"order_id": order_id, "errors": len(errors), "message_ref": message_ref,
                                              "correlation_ids": [claim.correlation_id] if claim else []})
        return "notified"

    def _alert_instead(self, stream: str, order_id: str, subject: str, errors: Any, nid: str, reason: str,
                       claim: Cause | None) -> str:
        """No email settings: the notice is a `notification_unconfigured` alert, recorded as given
        through the "alert" channel so the errors leave the pending view and no later run repeats it."""
        from projections.reactor.rules.alerts import notification_unconfigured_alert  # only without a mailer

        alert = notification_unconfigured_alert(stream, nid, subject, reason)
        raised = append_alert(self._store, alert, SERVICE, claim)
        logger.warning("order errors given as an alert, not emailed: " + reason,
                       extra={"order_id": order_id, "alert_id": alert.alert_id, "raised_now": raised})
        self._append(stream, "dynafold.orders.errors_notified.v1",
                     OrderErrorsNotified(order_id=order_id, error_hashes=tuple(e.error_hash for e in errors),
                                         channel="alert", message_ref=alert.alert_id, notification_id=nid),
                     ANY, key=f"notified:{nid}", cause=claim)
        metrics.add_metric(name="PendingErrorsNotified", unit=MetricUnit.Count, value=len(errors))
        return "notified"

    def _append(self, stream: str, event_type: str, data: Any, expected: Any, key: str | None = None,
                cause: Cause | None = None) -> Any:
        # Stamped with the monitor's clock: a claim's lease runs from when this monitor made it.
        event = NewEvent(event_type, data, source=SOURCE, time=self._clock(),
                         correlation_id=cause.correlation_id if cause else None,
                         causation_id=cause.id if cause else None)
        return self._store.append(stream, [event], expected, idempotency_key=key)


def _latest_validation(history: list[RecordedEvent]) -> RecordedEvent | None:
    """The order's latest `order validated`: the error set the monitor acts on came from it."""
    return next((event for event in reversed(history) if isinstance(event.data, OrderValidated)), None)


def _appended(result: Any, cause: Cause | None) -> Cause:
    """The event an append just wrote, as the cause of what follows it (same correlation)."""
    event_id = result.event_ids[-1]
    return CauseRef(event_id, cause.correlation_id if cause else event_id)
