"""The support answers, pure: "why wasn't this order sent?" and "did this webhook get delivered?",
from constructed histories (the integration tests ask the same on the demo's traffic)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pydantic import BaseModel

from events import catalogue
from events.deliveries import (
    DeadLettered, DeliveryAttempted, MessageReceived, RedriveRequested, RetryScheduled, TargetDisabled,
)
from events.delivery_policy import RetryPolicy
from events.envelope import RecordedEvent, format_time
from events.orders import NotificationClaimed, NotificationFailed, OrderError, OrderErrorsNotified, OrderValidated
from projections.delivery_status.explain import explain_delivery
from projections.pending_errors.explain import explain_order

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
GRACE = timedelta(minutes=30)
TYPES = {spec.model: name for name, spec in catalogue.BY_TYPE.items()}
TUK = OrderError(error_hash="aa11", rule="discount_on_tuk_item", message="TUK item TUK-CHAIR has 10% discount")
REMARK = OrderError(error_hash="bb22", rule="discount_remark", message="Discounted order has no discount remark")


def events(stream: str, *steps: tuple[timedelta, BaseModel]) -> list[RecordedEvent]:
    return [RecordedEvent(stream=stream, version=n, id=f"e{n}", type=TYPES[type(data)], source="urn:dynafold:inflow",
                          time=T0 + offset, data=data, correlation_id="c", causation_id=None, prev_hash="0" * 64,
                          hash=f"{n:064x}") for n, (offset, data) in enumerate(steps, 1)]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def validated(*errors: OrderError) -> OrderValidated:
    return OrderValidated(order_id="o-777", order_number="SO-000777", errors=errors)


def test_an_order_emailed_after_a_failed_send_and_one_error_fixed_in_its_grace_period():
    history = events("order:o-777",
                     (minutes(0), validated(TUK, REMARK)),
                     (minutes(10), validated(TUK)),
                     (minutes(31), NotificationClaimed(order_id="o-777", notification_id="n1", error_hashes=("aa11",),
                                                       attempt=1, lease_seconds=300)),
                     (minutes(31), NotificationFailed(order_id="o-777", notification_id="n1", attempt=1,
                                                      error="SMTPError: 451")),
                     (minutes(36), NotificationClaimed(order_id="o-777", notification_id="n1", error_hashes=("aa11",),
                                                       attempt=2, lease_seconds=300)),
                     (minutes(36), OrderErrorsNotified(order_id="o-777", error_hashes=("aa11",), channel="email",
                                                       message_ref="ses-0001", notification_id="n1")))
    answer = explain_order("o-777", history, GRACE, T0 + minutes(40))
    assert answer.answer.startswith("Order SO-000777 still has 1 unresolved error (discount_on_tuk_item: TUK item")
    assert "notified by email (SES) at 2026-03-01 10:36:00 UTC" in answer.answer
    tuk, remark = answer.facts["errors"]
    assert tuk == {"error_hash": "aa11", "rule": "discount_on_tuk_item", "severity": "error",
                   "message": "TUK item TUK-CHAIR has 10% discount", "detected_at": format_time(T0),
                   "grace_ends_at": format_time(T0 + GRACE), "notified_at": format_time(T0 + minutes(36)),
                   "fixed_at": None, "status": "notified"}
    assert (remark["rule"], remark["fixed_at"], remark["notified_at"], remark["status"]) == (
        "discount_remark", format_time(T0 + minutes(10)), None, "fixed")
    [notice] = answer.facts["notifications"]
    assert (notice["sent_at"], notice["channel"], notice["message_ref"], len(notice["claimed_at"])) == (
        format_time(T0 + minutes(36)), "email", "ses-0001", 2)
    assert notice["failures"] == [{"at": format_time(T0 + minutes(31)), "attempt": 1, "error": "SMTPError: 451"}]
    assert (answer.facts["pending"], answer.facts["notified_still_reported"]) == ([], ["aa11"])
    text = answer.text()
    assert ("discount_remark (error): Discounted order has no discount remark. Detected 2026-03-01 10:00:00 UTC; "
            "grace period 30 min, until 2026-03-01 10:30:00 UTC. Fixed 2026-03-01 10:10:00 UTC (inside its grace "
            "period).") in text
    assert "2026-03-01 10:31:00 UTC: sending failed (attempt 1): SMTPError: 451; the next monitor run retries it." in text
    assert "2026-03-01 10:36:00 UTC: sent by email (SES), message ref ses-0001." in text
    assert ("Still pending now:\n  discount_on_tuk_item: emailed at 2026-03-01 10:36:00 UTC and still reported; "
            "no second email.") in text
    assert answer.event_ids == ("e1", "e2", "e3", "e4", "e5", "e6") and answer.subject == "order:o-777"


def test_an_order_in_its_grace_period_says_when_it_ends_and_a_clean_order_that_nothing_held_it():
    waiting = explain_order("o-777", events("order:o-777", (minutes(0), validated(REMARK))), GRACE, T0 + minutes(10))
    assert waiting.facts["pending"] == ["bb22"]
    assert ("discount_remark: pending since 2026-03-01 10:00:00 UTC; its grace period ends at "
            "2026-03-01 10:30:00 UTC (in 20 min).") in waiting.text()
    assert "ends at 2026-03-01 10:30:00 UTC; then, if unfixed, one email" in waiting.answer
    clean = explain_order("o-777", events("order:o-777", (minutes(0), validated())), GRACE, T0)
    assert clean.answer == "Order SO-000777 was validated with no errors: nothing in dynafold held it back."


URL = "https://hooks.example.com/orders"
RECEIVED = MessageReceived(sender_id="s1", message_id="m1", target_url=URL, payload={})


def failed(attempt: int, code: int = 503) -> DeliveryAttempted:
    return DeliveryAttempted(attempt=attempt, success=False, category="SERVER_ERROR", retryable=True,
                             status_code=code, response_time_ms=12.0, error=f"HTTP {code}")


def test_a_delivery_waiting_for_a_retry_says_all_four_answers():
    second = timedelta(seconds=1)
    history = events("delivery:s1:m1", (0 * second, RECEIVED), (second, failed(1)),
                     (second, RetryScheduled(attempt=1, next_retry_at=T0 + 2 * second, delay_seconds=1.0,
                                             exponential_delay=1.0, jitter=0.0)))
    answer = explain_delivery(history, None, RetryPolicy(), 10.0, T0 + second)
    delivered, next_retry, left, gives_up = answer.sections[0].sentences
    assert delivered == ("Not yet: attempt 1 failed at 2026-03-01 10:00:01 UTC with HTTP 503 (SERVER_ERROR).")
    assert next_retry == "Next retry: attempt 2 at 2026-03-01 10:00:02 UTC (in 1 s)."
    assert left == "Retries left: 3 (attempts 2 to 4; the budget of 3 retries is counted from attempt 1)."
    # the waits before attempts 3 and 4 are at most 2 s and 4 s; three requests of up to 10 s each
    assert gives_up.startswith("Gives up: if attempt 4 fails too, at the latest by 2026-03-01 10:00:38 UTC; the "
                               "delays are jittered, so it may be as early as 2026-03-01 10:00:02 UTC")
    assert (answer.facts["next_retry_at"], answer.facts["retries_left"], answer.facts["gives_up_by"]) == (
        format_time(T0 + 2 * second), 3, format_time(T0 + 38 * second))
    assert answer.answer == delivered and answer.facts["delivered"] is False


def test_a_dead_letter_behind_a_disabled_target_says_how_to_enable_it_and_a_redrive_counts_afresh():
    gone = TargetDisabled(target_url=URL, reason="HTTP 410 on attempt 1", status_code=410)
    steps = [(timedelta(), RECEIVED), (timedelta(seconds=1), failed(1, 410)),
             (timedelta(seconds=1), DeadLettered(attempts=1, reason="TARGET_GONE: HTTP 410, target disabled"))]
    answer = explain_delivery(events("delivery:s1:m1", *steps), gone, RetryPolicy(), 10.0, T0)
    assert answer.answer == ("No: it was dead-lettered at 2026-03-01 10:00:01 UTC after 1 attempt(s), the failure is "
                             "permanent, so it was not retried (TARGET_GONE: HTTP 410, target disabled).")
    assert answer.sections[0].sentences[1] == (
        f"Next retry: none; enable it with `dynafold targets enable {URL}`, then redrive it with "
        "`dynafold deliveries redrive s1:m1`.")
    assert answer.facts["target_disabled"] is True and answer.facts["retries_left"] == 0
    redrive = RedriveRequested(attempt=2, kind="redrive", previous_status="FAILED", requested_by="ops")
    redriven = events("delivery:s1:m1", *steps, (timedelta(minutes=5), redrive))
    again = explain_delivery(redriven, None, RetryPolicy(), 10.0, T0 + timedelta(minutes=5))
    assert again.sections[0].sentences[2] == (
        "Retries left: 3 (attempts 2 to 5; the budget of 3 retries is counted afresh from attempt 2, the redrive's).")
    assert "redriven by ops: attempt 2 due at once, with a fresh retry budget." in again.text()
