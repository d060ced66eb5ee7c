"""The local stack built through the composition root with faulty adapters, and the invariants
every fault scenario asserts after redelivery."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from events.envelope import NewEvent, RecordedEvent
from events.items import from_item
from events.store import EventStore
from processors.local import stack as stack_module
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from projections.registry import view_for_stream
from projections.view import stream_key
from projections.view_store import ViewStore, from_item as row_from_item
from tests.faults.injector import CrashBoundary, FaultPlan, FaultyClient

REACTOR_SOURCE = "urn:dynafold:reactor"


def faulty_stack(local_dynamo: Any, state_dir: Path, plan: FaultPlan, monkeypatch: pytest.MonkeyPatch,
                 **kwargs: Any) -> LocalStack:
    """A LocalStack whose composition root gets a FaultyClient for DynamoDB (every handler's store,
    views and queries go through it; the stream runner only asks it for the stream ARN). Handlers
    sit behind a CrashBoundary: an injected Crash fails the invocation, as a dead Lambda would."""
    real = local_dynamo.new_client()
    monkeypatch.setattr(stack_module, "dynamodb_client", lambda *args, **kw: FaultyClient(real, plan))
    armed, plan.armed = plan.armed, False  # building the stack is not under test
    try:
        stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), state_dir,
                           access_key=local_dynamo.access_key, logs=CrashBoundary(state_dir / "logs"), **kwargs)  # type: ignore[arg-type]
    finally:
        plan.armed = armed
    stack.clean_client = real  # for the test's own reads: never faulted
    return stack


def log_by_stream(store: EventStore) -> dict[str, list[RecordedEvent]]:
    by_stream: dict[str, list[RecordedEvent]] = {}
    for item in store.scan_items(segments=1):
        by_stream.setdefault(item["stream"]["S"], []).append(from_item(item))
    return by_stream


def assert_log_intact(store: EventStore, by_stream: dict[str, list[RecordedEvent]]) -> None:
    """No event lost or duplicated: every stream's versions run 1..n with an intact chain up to its
    sealed checkpoint, and no derived event was appended twice for one cause."""
    for stream in by_stream:
        report = store.verify_stream(stream)
        assert report.ok, f"{stream}: {report.broken}"
    derived = Counter((stream, e.type, e.causation_id) for stream, events in by_stream.items() for e in events
                      if e.source == REACTOR_SOURCE)
    assert [key for key, n in derived.items() if n > 1] == []


def assert_views_equal_clean_fold(client: Any, stack: LocalStack, by_stream: dict[str, list[RecordedEvent]]) -> None:
    """Every view equals a straight fold of its stream's events (DESIGN.md rule 5)."""
    plain = ViewStore(client, stack.tables.views)
    checked = 0
    for stream, events in by_stream.items():
        view = view_for_stream(stream)
        if view is None:
            continue
        expected = view.fold(stream_key(stream), events)
        loaded = plain.load(view, stream_key(stream))
        assert loaded.version == events[-1].version, stream
        assert dict(loaded.rows) == {k: {n: v for n, v in row.items() if v is not None}
                                     for k, row in view.rows(expected).items()}, stream
        checked += 1
        if stream.startswith("sku:"):
            returns = client.query(
                TableName=stack.tables.views["inventory-returns"], KeyConditionExpression="sku = :s",
                ExpressionAttributeValues={":s": {"S": stream_key(stream)}}, ConsistentRead=True)["Items"]
            expected_returns = [e.id for e in events if e.type.endswith("return_recorded.v1")]
            assert sorted(row_from_item(r)["event_id"] for r in returns) == sorted(expected_returns), stream
    assert checked, "no view was checked"


def alerts(by_stream: dict[str, list[RecordedEvent]]) -> Counter[tuple[str, str]]:
    """(alert type, the stream it is about) -> how many alert streams raised it."""
    raised: Counter[tuple[str, str]] = Counter()
    for stream, events in by_stream.items():
        if stream.startswith("alert:"):
            data = events[0].data
            raised[(data.alert_type, data.subject)] += 1
    return raised


def big_order(order_id: str, errors: int, at: datetime) -> NewEvent:
    """An order with more pending errors than one transaction holds (issue 12 defect 1)."""
    return NewEvent("dynafold.orders.validated.v1", {
        "order_id": order_id, "order_number": f"SO-{order_id}",
        "errors": [{"error_hash": f"h{i:03d}", "rule": f"rule-{i}", "message": f"problem {i}"} for i in range(errors)]},
        time=at)


def recent() -> datetime:
    # Pending-error rows carry a 7-day TTL that DynamoDB Local enforces: stay recent.
    return (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
