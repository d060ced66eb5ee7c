"""The error monitor's pure decisions: due errors, claims and their leases, attempts, re-validation."""

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from events.envelope import RecordedEvent
from events.order_rules import Order, validate_order
from events.orders import NotificationClaimed, NotificationFailed, OrderErrorsNotified, OrderValidated
from projections.notification_rules import (
    claim_in_progress,
    email_text,
    expired_errors,
    fold_order,
    plan_notification,
)

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
GRACE = timedelta(minutes=30)
ORDER = {"order_id": "o", "order_number": "SO-9", "remarks": "r", "lines": [{"sku": "TUK-1", "discount_percent": 5}]}
ERRORS = validate_order(Order.model_validate(ORDER))


def recorded(version: int, data, minutes: float) -> RecordedEvent:
    return RecordedEvent("order:o", version, f"e{version}", "t", "urn:test", T0 + timedelta(minutes=minutes), data,
                         "c", None, "", "")


def validated(version: int, minutes: float, errors=ERRORS) -> RecordedEvent:
    return recorded(version, OrderValidated(order_id="o", order_number="SO-9", errors=errors, order=ORDER), minutes)


@given(st.floats(min_value=0, max_value=120))
def test_an_error_is_due_exactly_when_its_grace_period_is_over(minutes):
    state = fold_order("o", [validated(1, 0)])
    due = expired_errors(state, T0 + timedelta(minutes=minutes), GRACE)
    assert bool(due) == (minutes >= 30)


def test_a_repeated_error_keeps_its_first_detection_and_a_resolved_one_is_gone():
    state = fold_order("o", [validated(1, 0), validated(2, 25)])
    assert list(expired_errors(state, T0 + timedelta(minutes=31), GRACE)) == [ERRORS[0].error_hash]
    state = fold_order("o", [validated(1, 0), validated(2, 25, errors=())])
    assert expired_errors(state, T0 + timedelta(minutes=31), GRACE) == {}


def test_claims_hold_others_off_for_their_lease_and_failures_bump_the_attempt():
    now = T0 + timedelta(minutes=31)
    first = plan_notification(fold_order("o", [validated(1, 0)]), ORDER, "SO-9", ERRORS, now, GRACE)
    assert first.revalidated is None and first.attempt == 1 and first.notify == ERRORS
    claim = recorded(2, NotificationClaimed(order_id="o", notification_id=first.notification_id,
                                            error_hashes=(ERRORS[0].error_hash,), attempt=1, lease_seconds=300), 31)
    state = fold_order("o", [validated(1, 0), claim])
    assert claim_in_progress(state, T0 + timedelta(minutes=35)) is not None
    assert claim_in_progress(state, T0 + timedelta(minutes=36)) is None  # the claimer died: lease over
    failed = recorded(3, NotificationFailed(order_id="o", notification_id=first.notification_id, attempt=1,
                                            error="smtp down"), 31.5)
    state = fold_order("o", [validated(1, 0), claim, failed])
    assert claim_in_progress(state, T0 + timedelta(minutes=32)) is None
    again = plan_notification(state, ORDER, "SO-9", ERRORS, T0 + timedelta(minutes=36), GRACE)
    assert (again.notification_id, again.attempt) == (first.notification_id, 2)
    sent = recorded(4, OrderErrorsNotified(order_id="o", error_hashes=(ERRORS[0].error_hash,),
                                           notification_id=first.notification_id), 36)
    assert expired_errors(fold_order("o", [validated(1, 0), claim, failed, sent]), T0 + timedelta(hours=1), GRACE) == {}


def test_revalidation_appends_the_new_error_set_only_when_it_changed():
    state = fold_order("o", [validated(1, 0)])
    plan = plan_notification(state, ORDER, "SO-9", (), T0 + timedelta(minutes=31), GRACE)
    assert plan.notify == () and plan.revalidated is not None and plan.revalidated.errors == ()


def test_the_email_lists_each_error_once_with_its_first_detection():
    subject, body = email_text("o", "SO-9", ERRORS, {ERRORS[0].error_hash: "2026-01-05T10:00:00Z"})
    assert subject == "Order SO-9: 1 unresolved error"
    assert body.count("discount_on_tuk_item") == 1 and "first detected 2026-01-05T10:00:00Z" in body


def _notified(version: int, minutes: float, nid: str) -> RecordedEvent:
    return recorded(version, OrderErrorsNotified(order_id="o", error_hashes=(ERRORS[0].error_hash,),
                                                 notification_id=nid), minutes)


def test_a_notified_error_is_not_due_again_while_it_stays_unresolved():
    """Issue 12 defect 2: re-sent unchanged or touched, an emailed error is not emailed again."""
    first = plan_notification(fold_order("o", [validated(1, 0)]), ORDER, "SO-9", ERRORS, T0 + timedelta(minutes=31),
                              GRACE)
    events = [validated(1, 0), _notified(2, 31, first.notification_id), validated(3, 40), validated(4, 90)]
    state = fold_order("o", events)
    assert expired_errors(state, T0 + timedelta(hours=5), GRACE) == {}
    again = plan_notification(state, ORDER, "SO-9", ERRORS, T0 + timedelta(hours=5), GRACE)
    assert again.notify == () and again.revalidated is None  # nothing changed: nothing to append either


def test_an_error_fixed_and_reintroduced_is_a_new_notification():
    """Issue 12 defect 2: a new episode of the same error gets its own id, so its record is not a reused key."""
    first = plan_notification(fold_order("o", [validated(1, 0)]), ORDER, "SO-9", ERRORS, T0 + timedelta(minutes=31),
                              GRACE)
    events = [validated(1, 0), _notified(2, 31, first.notification_id), validated(3, 40, errors=()), validated(4, 50)]
    state = fold_order("o", events)
    assert expired_errors(state, T0 + timedelta(minutes=79), GRACE) == {}  # its own grace period
    second = plan_notification(state, ORDER, "SO-9", ERRORS, T0 + timedelta(minutes=80), GRACE)
    assert second.notify == ERRORS and second.notification_id != first.notification_id and second.attempt == 1


def test_the_monitor_handler_runs_only_for_an_eventbridge_schedule(capsys):
    """Issue 12 defect 12: anything but {source: aws.events, detail-type: Scheduled Event} does no work."""
    import time
    from collections import Counter

    from processors.handlers.error_monitor import make_handler
    from processors.local.stream_runner import LambdaContext

    class CountingMonitor:
        runs = 0

        def run(self):
            CountingMonitor.runs += 1
            return Counter()

    handler = make_handler(CountingMonitor())
    context = LambdaContext("dynafold-error-monitor", "req-1", "arn:aws:lambda:us-east-1:1:function:m",
                            time.monotonic() + 60)
    scheduled = {"id": "e-1", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    for wrong in ({**scheduled, "source": "custom.app"}, {**scheduled, "detail-type": "Object Created"},
                  {"Records": []}, {}):
        assert "refused" in handler(wrong, context)
    assert CountingMonitor.runs == 0
    # The refusal is counted (EMF on stdout); the log line goes to the logger's own stream, which
    # an earlier test in the session may have bound to another capture.
    assert capsys.readouterr().out.count('"MonitorInvocationsRefused":[1.0]') == 4
    assert handler(scheduled, context) == {"outcomes": {}} and CountingMonitor.runs == 1
