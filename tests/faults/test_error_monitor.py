"""The error monitor under faults: SES failing before or after the email went out, DynamoDB failing
anywhere - between the claim and the send, between the send and its record - and crashes.

What the design guarantees (projections/notification_rules.py): one email per set of errors when
sends fail *before* sending and monitors race. A failure after the email left (SES's answer lost,
or the `errors notified` record not written) cannot be told from a failed send, so the next run
after the claim's lease sends again: the documented at-least-once window. Asserted here: every
due order is emailed, never more than once plus once per injected fault, every error set ends
notified (out of the pending view), later runs send nothing (no storm), the views equal a clean fold.
"""

from __future__ import annotations

import contextlib

import os
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from events.envelope import NewEvent
from events.order_rules import Order, validate_order
from events.store import EventStore
from processors.local.outbox import OutboxMailer, read_outbox
from projections.queries import ViewQueries
from tests.faults.harness import assert_log_intact, assert_views_equal_clean_fold, faulty_stack, log_by_stream
from tests.faults.injector import Crash, Fault, FaultPlan, faulty_method, ses_error, transient_faults

T0 = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(microsecond=0)
ORDERS = [{"order_id": f"o-{n}", "order_number": f"SO-{n}", "lines": [{"sku": "TUK-1", "discount_percent": 10}],
           "remarks": "ok"} for n in range(3)]
DEFAULT_SEEDS = [int(s) for s in os.environ.get("DYNAFOLD_FAULT_SEEDS", "1").split(",")]
SES_FAULTS = [Fault("Throttling"), Fault("ServiceUnavailable"), Fault("Throttling", after=True),
              Fault("timeout", after=True)]


def mixed_faults(method: str) -> list[Fault]:
    if method == "ses_send":
        return SES_FAULTS
    return [*transient_faults(method), Fault("crash", after=True)]


class FaultyMailer:
    channel = "email"

    def __init__(self, outbox: Path, plan: FaultPlan) -> None:
        self.send = faulty_method(plan, "ses_send", OutboxMailer(outbox).send, ses_error)


def run(local_dynamo, tmp_path, monkeypatch, plan: FaultPlan) -> None:
    plan.armed = False
    stack = faulty_stack(local_dynamo, tmp_path, plan, monkeypatch)
    for order in ORDERS:
        errors = [e.model_dump(mode="json") for e in validate_order(Order.model_validate(order))]
        stack.store.append(f"order:{order['order_id']}", [NewEvent(
            "dynafold.orders.validated.v1", {"order_id": order["order_id"], "order_number": order["order_number"],
                                             "errors": errors, "order": order}, time=T0)])
    stack.drain()
    outbox = tmp_path / "outbox.jsonl"
    mailer = FaultyMailer(outbox, plan)
    plan.armed = True
    for minutes in range(31, 120, 5):  # the 5-minute schedule, two hours
        monitor = stack.root.build_error_monitor(mailer=mailer, clock=lambda m=minutes: T0 + timedelta(minutes=m))
        # A failed (or dead) invocation, e.g. the due-errors query failed: the next scheduled run goes
        # on, as EventBridge's would.
        with contextlib.suppress(Crash, Exception):
            monitor.run()
        stack.drain()
    plan.armed = False
    sent = Counter(email["subject"].split(":")[0] for email in read_outbox(outbox))
    for minutes in range(120, 200, 5):  # later runs, no faults: nothing more is sent
        stack.root.build_error_monitor(mailer=mailer, clock=lambda m=minutes: T0 + timedelta(minutes=m)).run()
        stack.drain()
    assert Counter(email["subject"].split(":")[0] for email in read_outbox(outbox)) == sent, "sent again later"

    duplicating = len(plan.injected)
    for order in ORDERS:
        emails = sent[f"Order {order['order_number']}"]
        assert 1 <= emails <= 1 + duplicating, (order["order_id"], emails, plan.injected)
    assert sum(sent.values()) <= len(ORDERS) + duplicating, (sent, plan.injected)
    store = EventStore.over(stack.clean_client, stack.tables)
    by_stream = log_by_stream(store)
    assert_log_intact(store, by_stream)
    assert_views_equal_clean_fold(stack.clean_client, stack, by_stream)
    for order in ORDERS:
        notified = [e for e in by_stream[f"order:{order['order_id']}"] if e.type.endswith("errors_notified.v1")]
        assert len(notified) == 1, order["order_id"]
    assert ViewQueries(stack.clean_client, stack.tables.views).pending_errors.all() == []  # every one emailed


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
def test_each_due_order_is_emailed_within_the_at_least_once_window(local_dynamo, tmp_path, monkeypatch, seed):
    plan = FaultPlan.seeded(seed, rate=0.1, budget=6, faults=mixed_faults)
    run(local_dynamo, tmp_path, monkeypatch, plan)
    assert plan.injected, "the plan injected nothing: raise the rate"


def failing_first(times: int, matches: Callable[[str, Mapping[str, Any]], bool],
                  fault: Fault) -> tuple[FaultPlan, list[int]]:
    """A plan giving ``fault`` to the first ``times`` calls ``matches(method, params)``, and its count."""
    failures = [0]

    def decide(index: int, method: str, params: Mapping[str, Any]) -> Fault | None:
        if failures[0] >= times or not matches(method, params):
            return None
        failures[0] += 1
        return fault
    return FaultPlan(decide), failures


def test_ses_failing_before_sending_never_sends_twice(local_dynamo, tmp_path, monkeypatch):
    """Sends that fail before the email leaves are retried by the next run: exactly one email each."""
    plan, failures = failing_first(2, lambda method, params: method == "ses_send", Fault("Throttling"))
    run(local_dynamo, tmp_path, monkeypatch, plan)
    assert failures[0] == 2
    assert Counter(e["subject"].split(":")[0] for e in read_outbox(tmp_path / "outbox.jsonl")) == {
        f"Order {o['order_number']}": 1 for o in ORDERS}


def test_a_record_whose_event_was_not_written_does_not_make_every_later_run_send_again(
        local_dynamo, tmp_path, monkeypatch):
    """The `errors notified` record's guard is written, its event is not (a timeout before the put):
    the next run after the lease sends again (the at-least-once window) and its record, with another
    message_ref, lands under that attempt's key. Under one key per notification it was refused as a
    reused key on every later run, each having sent the email again."""
    def notified_event_put(method: str, params: Mapping[str, Any]) -> bool:
        item_type = (params.get("Item") or {}).get("type", {}).get("S", "")
        return method == "put_item" and item_type.endswith("errors_notified.v1")
    plan, failed = failing_first(1, notified_event_put, Fault("timeout"))
    run(local_dynamo, tmp_path, monkeypatch, plan)
    assert failed[0] == 1
    sent = Counter(e["subject"].split(":")[0] for e in read_outbox(tmp_path / "outbox.jsonl"))
    assert sorted(sent.values()) == [1, 1, 2]  # the order whose record failed: once more, no storm


@pytest.mark.long
@pytest.mark.parametrize("seed", range(100, 115))
def test_each_due_order_is_emailed_within_the_window_many_seeds(local_dynamo, tmp_path, monkeypatch, seed):
    plan = FaultPlan.seeded(seed, rate=0.1, budget=6, faults=mixed_faults)
    run(local_dynamo, tmp_path, monkeypatch, plan)
    assert plan.injected, "the plan injected nothing: raise the rate"
