"""Projector and reactor under injected DynamoDB faults, on the real DynamoDB Local stream.

A seeded history (orders with errors, one with more errors than a transaction holds, SKU counts,
adjustments and a damaged return, deliveries) is appended cleanly; then the two stream consumers
drain it through a FaultyClient, redelivering as the event source mapping does. Afterwards: every
view equals a clean fold of the log, every alert was raised exactly once, no derived event was
lost or appended twice, and no record ended on the failure destination.

Default: a few seeds of random faults, and a sample of "crash after the k-th call" positions;
``pytest -m long`` runs many seeds and every k.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta

import pytest

from events.envelope import NewEvent
from events.store import EventStore
from tests.faults.harness import (
    alerts,
    assert_log_intact,
    assert_views_equal_clean_fold,
    big_order,
    faulty_stack,
    log_by_stream,
    recent,
)
from tests.faults.injector import CANCELLATION_CODES, Fault, FaultPlan
from tests.integration.sample_history import sample_history

# Retries of one batch stay below the mappings' MaximumRetryAttempts (5, template.yaml): with at
# most this many faults in a run, no record may be discarded, so everything must converge.
BUDGET = 4
DEFAULT_SEEDS = [int(s) for s in os.environ.get("DYNAFOLD_FAULT_SEEDS", "1").split(",")]


def append_history(stack, small: bool = False) -> None:
    t0 = recent()
    for append in sample_history(t0):
        stack.store.append(append.stream, list(append.events), idempotency_key=append.idempotency_key)
    if small:  # the crash enumeration: the seeds' story without the big order
        return
    stack.store.append("order:big-1", [big_order("big-1", 150, t0 + timedelta(minutes=20))])
    stack.store.append("order:big-1", [big_order("big-1", 120, t0 + timedelta(minutes=21))])
    for n, delta in enumerate((-20, -25, 7, -9)):
        stack.store.append("sku:PROD-001", [NewEvent("dynafold.inventory.stock_adjusted.v2",
                                                     {"sku": "PROD-001", "delta": delta, "reason": "order"},
                                                     time=t0 + timedelta(minutes=30 + n))])


def assert_converged(stack, expected_alerts) -> None:
    store = EventStore.over(stack.clean_client, stack.tables)
    by_stream = log_by_stream(store)
    assert_log_intact(store, by_stream)
    assert_views_equal_clean_fold(stack.clean_client, stack, by_stream)
    raised = alerts(by_stream)
    assert set(raised) == expected_alerts and all(n == 1 for n in raised.values()), raised
    assert stack.drain() == 0  # nothing left to redeliver


FULL_ALERTS = {("return_damaged", "sku:PROD-001"), ("stock_low", "sku:PROD-002"), ("stock_low", "sku:PROD-001"),
               ("order_errors_notified", "order:0b7d2a61-1c55-4b9e-a3f6-2f0f5a1e9c10")}


def run_seed(local_dynamo, tmp_path, monkeypatch, seed: int) -> None:
    plan = FaultPlan.seeded(seed, rate=0.08, budget=BUDGET)
    stack = faulty_stack(local_dynamo, tmp_path, plan, monkeypatch)
    plan.armed = False
    append_history(stack)
    plan.armed = True
    stack.drain()
    plan.armed = False
    assert plan.injected, "the plan injected nothing: raise the rate"
    assert_converged(stack, FULL_ALERTS)


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
def test_views_and_alerts_converge_under_random_faults(local_dynamo, tmp_path, monkeypatch, seed):
    run_seed(local_dynamo, tmp_path, monkeypatch, seed)


@pytest.mark.long
@pytest.mark.parametrize("seed", range(100, 130))
def test_views_and_alerts_converge_under_random_faults_many_seeds(local_dynamo, tmp_path, monkeypatch, seed):
    run_seed(local_dynamo, tmp_path, monkeypatch, seed)


KINDS = ["InternalServerError", "ProvisionedThroughputExceededException", "ThrottlingException", "timeout",
         *[f"cancel:{r}" for r in CANCELLATION_CODES]]
DEFAULT_KINDS = ["InternalServerError", "timeout", "cancel:ConditionalCheckFailed", "cancel:ValidationError"]


@pytest.mark.parametrize("kind", [k if k in DEFAULT_KINDS else pytest.param(k, marks=pytest.mark.long) for k in KINDS])
def test_every_fault_kind_on_every_write_of_the_big_order(local_dynamo, tmp_path, monkeypatch, kind):
    """Each fault kind, on every other write (before and after): the multi-transaction view change of
    an order with 150 errors must resume after any of them (issue 12 defect 1). Only the projector
    writes here, and the view store re-reads on a conditional failure, so even a false
    ConditionalCheckFailed is fair to inject."""
    writes = [0]

    cancel = kind.startswith("cancel:")
    eligible = {"transact_write_items"} if cancel else {"transact_write_items", "put_item", "batch_execute_statement"}

    def decide(index, method, params):
        if method not in eligible:
            return None
        writes[0] += 1
        if writes[0] % 2 or writes[0] > 2 * BUDGET:
            return None
        return Fault(kind, after=not cancel and writes[0] % 4 == 0)
    plan = FaultPlan(decide, armed=False)
    stack = faulty_stack(local_dynamo, tmp_path, plan, monkeypatch)
    stack.store.append("order:big-1", [big_order("big-1", 150, recent())])
    plan.armed = True
    stack.drain()
    plan.armed = False
    assert plan.injected
    assert_converged(stack, set())


def crash_positions(calls: int, sample: int | None, seed: int = 12) -> list[int]:
    everything = list(range(calls))
    return everything if sample is None else sorted(random.Random(seed).sample(everything, min(sample, calls)))


def run_crash_enumeration(local_dynamo, tmp_path, monkeypatch, sample: int | None) -> None:
    """A clean run counts the calls; then, for each position k, a fresh database where the consumer
    crashes right after its k-th call (its effect stays), is redelivered, and must converge."""
    counting = FaultPlan(armed=False)
    stack = faulty_stack(local_dynamo, tmp_path / "clean", counting, monkeypatch)
    append_history(stack, small=True)
    counting.armed = True
    stack.drain()
    counting.armed = False
    calls = counting.calls
    expected = set(alerts(log_by_stream(stack.store)))
    assert calls > 10, calls
    for k in crash_positions(calls, sample):
        db = local_dynamo.fresh()
        plan = FaultPlan.at(k, lambda method: Fault("crash", after=True))
        plan.armed = False
        crashed = faulty_stack(db, tmp_path / f"k{k}", plan, monkeypatch)
        append_history(crashed, small=True)
        plan.armed = True
        crashed.drain()
        plan.armed = False
        assert plan.injected, f"crash position {k} of {calls} was never reached"
        assert_converged(crashed, expected)


def test_a_crash_after_any_call_of_the_consumers_converges_sample(local_dynamo, tmp_path, monkeypatch):
    run_crash_enumeration(local_dynamo, tmp_path, monkeypatch, sample=int(os.environ.get("DYNAFOLD_CRASH_SAMPLE", "2")))


@pytest.mark.long
def test_a_crash_after_any_call_of_the_consumers_converges_every_k(local_dynamo, tmp_path, monkeypatch):
    run_crash_enumeration(local_dynamo, tmp_path, monkeypatch, sample=None)
