"""Whether a delivery may be redriven, and how (projections/delivery_status/redrive.py, pure), and the
redrive service appending it once when two operators ask at once (processors/services/redrive.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from events import catalogue
from events.deliveries import TargetDisabled
from events.delivery_policy import RetryPolicy
from events.envelope import NewEvent, RecordedEvent
from events.memory import InMemoryEventLog
from processors.services.support import Support
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


# ----------------------------------------------------------------------------- the service, on the in-memory log

def _dead_letter(store: InMemoryEventLog) -> str:
    stream = "delivery:s1:m1"
    store.append(stream, [
        NewEvent("dynafold.delivery.message_received.v1", {"sender_id": "s1", "message_id": "m1", "target_url": URL,
                                                           "payload": {}}),
        NewEvent("dynafold.delivery.attempted.v1", {"attempt": 1, "success": False, "category": "CLIENT_ERROR",
                                                    "status_code": 404, "response_time_ms": 3}),
        NewEvent("dynafold.delivery.dead_lettered.v1", {"attempts": 1, "reason": "PERMANENT_FAILURE: HTTP 404"}),
    ])
    return stream


def _redriver(store: Any) -> Any:
    # Delivery ids need no view: the redrive reads the delivery's stream (and its target's).
    return Support.build(store, None, lambda: datetime.now(timezone.utc), grace=timedelta(minutes=30),
                         retry=RetryPolicy(), timeout_seconds=10.0).redrive


class FirstReadFrom:
    """The log as a second operator's redrive saw it: its first read of the delivery is ``snapshot``,
    taken before the first operator's redrive landed."""

    def __init__(self, store: InMemoryEventLog, snapshot: list[RecordedEvent]) -> None:
        self._store, self._snapshot = store, snapshot

    def read_stream(self, stream: str, *args: Any) -> list[RecordedEvent]:
        if self._snapshot and stream == self._snapshot[0].stream:
            snapshot, self._snapshot = self._snapshot, []
            return snapshot
        return self._store.read_stream(stream, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.mark.parametrize("second_by, deduplicated", [("alice", True), ("bob", False)])
def test_two_redrives_of_one_dead_letter_asked_at_once_append_one_event(second_by, deduplicated):
    store = InMemoryEventLog()
    stream = _dead_letter(store)
    snapshot = store.read_stream(stream)  # both operators read the dead letter at version 3
    first = _redriver(store).redrive("s1:m1", requested_by="alice")
    second = _redriver(FirstReadFrom(store, snapshot)).redrive("s1:m1", requested_by=second_by)
    assert (first.appended, first.version) == (True, 4)
    # The same request again: the key (stream@3) gives the original answer. Another requester's: the
    # key refuses it, and read again the redrive is found waiting for its attempt.
    assert (second.appended, second.deduplicated, second.plan.outcome) == (
        False, deduplicated, "redrive" if deduplicated else "already")
    assert [e.type for e in store.read_stream(stream)].count("dynafold.delivery.redrive_requested.v1") == 1
