"""Whether a delivery may be redriven, and how (projections/delivery_status/redrive.py): pure."""

from __future__ import annotations

from dataclasses import replace

from events import catalogue
from events.deliveries import TargetDisabled
from projections.delivery_status import DeliveryStatus
from projections.delivery_status.redrive import plan_redrive, redrive_key

URL = "https://hooks.example.com/orders"
DEAD = DeliveryStatus(delivery_id="s1:m1", target_url=URL, status="MAX_RETRIES_EXCEEDED", attempts=4,
                      dead_letter_reason="MAX_RETRIES_EXCEEDED", updated_at="2026-03-01T12:00:00.000000Z")


def test_a_dead_letter_is_redriven_with_the_next_attempt_and_a_fresh_budget():
    plan = plan_redrive(DEAD, None, requested_by="ops", reason="target fixed")
    assert plan.outcome == "redrive" and plan.event is not None
    assert (plan.event.attempt, plan.event.kind, plan.event.previous_status, plan.event.dead_letter_reason) == (
        5, "redrive", "MAX_RETRIES_EXCEEDED", "MAX_RETRIES_EXCEEDED")
    assert (plan.event.requested_by, plan.event.reason) == ("ops", "target fixed")
    catalogue.validate("dynafold.delivery.redrive_requested.v1", plan.event)
    assert "fresh retry budget" in plan.reason


def test_a_scheduled_retry_is_brought_forward_with_the_same_budget():
    waiting = replace(DEAD, status="RETRY_SCHEDULED", attempts=2, dead_letter_reason=None,
                      next_retry_at="2026-03-01T12:05:00.000000Z")
    plan = plan_redrive(waiting, None)
    assert plan.outcome == "retry_now" and plan.event is not None and (plan.event.attempt, plan.event.kind) == (
        3, "retry_now")
    assert "instead of at 2026-03-01T12:05:00.000000Z" in plan.reason


def test_a_delivered_message_and_a_disabled_target_are_refused_with_the_reason():
    delivered = replace(DEAD, status="SUCCESS", attempts=2, dead_letter_reason=None,
                        delivered_at="2026-03-01T12:00:01.000000Z")
    refused = plan_redrive(delivered, None)
    assert (refused.outcome, refused.event) == ("refused", None) and "already delivered" in refused.reason
    gone = TargetDisabled(target_url=URL, reason="HTTP 410 on attempt 1", status_code=410)
    refused = plan_redrive(DEAD, gone)
    assert (refused.outcome, refused.event) == ("refused", None)
    assert refused.reason == (f"target disabled after HTTP 410 on attempt 1; enable it with "
                              f"`dynafold targets enable {URL}` first")


def test_a_redrive_waiting_for_its_attempt_is_not_asked_twice():
    redriven = replace(DEAD, status="RETRY_SCHEDULED", dead_letter_reason=None, round_start=5,
                       next_retry_at="2026-03-01T12:10:00.000000Z", redriven_at="2026-03-01T12:10:00.000000Z")
    plan = plan_redrive(redriven, None)
    assert (plan.outcome, plan.event) == ("already", None) and "attempt 5 is due now" in plan.reason


def test_the_key_names_the_stream_and_the_version_it_was_asked_at():
    assert redrive_key("delivery:s1:m1", 9) == "redrive:delivery:s1:m1@9" != redrive_key("delivery:s1:m1", 10)
