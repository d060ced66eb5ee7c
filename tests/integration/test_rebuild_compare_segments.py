"""The comparison split by scan segment, as the state machine's compare map runs it: segment by
segment it finds every difference the whole comparison finds, each once, counts every row once,
and stays right when the two tables place a key in different segments."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from events.envelope import NewEvent
from processors.operations.rebuild import table_rule
from processors.services.rebuild_compare import RebuildComparer
from projections.rebuild.comparison import DIFFERENT, EXTRA, MISSING
from projections.registry import VIEWS_BY_NAME
from projections.view import HEAD_SORT_KEY
from tests.integration.test_rebuild import append_history, make_rebuilder, make_stack

SEGMENTS = 4
HISTORY = {
    "sku": [(sku, kind, n) for n in range(3) for kind in range(5) for sku in "ABCDEFGH"],
    "order": [(order, kind, n) for n in range(4) for kind in range(3) for order in ("o1", "o2", "o3", "o4")],
    "delivery": [], "delivery_len": 0,
}
VIEWS = [VIEWS_BY_NAME["inventory"], VIEWS_BY_NAME["pending-errors"]]


class ShiftedSegments:
    """A client whose scans of one table see segment ``s`` where the other tables see ``s + 1``: two
    tables need not place a key in the same segment (DynamoDB does not promise it)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def scan(self, **request: Any) -> Any:
        if request.get("TableName") == self._table and "Segment" in request:
            request = {**request, "Segment": (request["Segment"] + 1) % request["TotalSegments"]}
        return self._client.scan(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def equal(local_dynamo, tmp_path):
    """Live views from the history and a rebuild of them, proven equal: (stack, rebuilder, plan)."""
    stack = make_stack(local_dynamo.endpoint_url, local_dynamo.access_key, tmp_path)
    append_history(stack.store, HISTORY)
    stack.drain()
    rebuilder = make_rebuilder(local_dynamo.client, stack.store, tmp_path, views=VIEWS, segments=SEGMENTS)
    plan, _ = rebuilder.plan()
    assert rebuilder.run(plan).comparison.equal
    return stack, rebuilder, plan


@pytest.fixture
def rebuilt(equal, local_dynamo):
    """The equal rebuild, then both sides damaged."""
    stack, rebuilder, plan = equal
    client, live, targets = local_dynamo.client, rebuilder.live_tables, plan.targets
    client.update_item(TableName=live["inventory"], Key={"sku": {"S": "A"}}, UpdateExpression="SET physical = :p",
                       ExpressionAttributeValues={":p": {"N": "99"}})
    client.delete_item(TableName=live["inventory"], Key={"sku": {"S": "B"}})
    client.put_item(TableName=targets["inventory"], Item={"sku": {"S": "Z"}, "physical": {"N": "1"}})
    client.delete_item(TableName=targets["inventory"], Key={"sku": {"S": "C"}})
    errors = [item for item in client.scan(TableName=targets["pending-errors"])["Items"]
              if item["error_hash"]["S"] != HEAD_SORT_KEY]
    victim = errors[0]
    client.delete_item(TableName=targets["pending-errors"], Key={"order_id": victim["order_id"], "error_hash": victim["error_hash"]})
    return stack, rebuilder, plan, victim


def comparer(client, rebuilder, plan) -> RebuildComparer:
    return RebuildComparer(client, rebuilder._store, VIEWS, rebuilder.live_tables, plan.targets,
                           {family: table_rule(family) for family in plan.targets}, segments=SEGMENTS)


def by_segment(client, rebuilder, plan):
    differences, rows = [], Counter()
    for segment in range(SEGMENTS):
        settled = comparer(client, rebuilder, plan).compare(0.0, segments=[segment])
        differences += [(d.family, d.key, d.kind) for d in settled.comparison.differences]
        rows.update(settled.comparison.rows)
    return differences, dict(rows)


def test_segment_by_segment_finds_what_the_whole_comparison_finds_each_difference_once(rebuilt, local_dynamo):
    _, rebuilder, plan, victim = rebuilt
    whole = comparer(local_dynamo.client, rebuilder, plan).compare(0.0).comparison
    expected = {("inventory", ("A",), DIFFERENT), ("inventory", ("B",), EXTRA), ("inventory", ("Z",), EXTRA),
                ("inventory", ("C",), MISSING),
                ("pending-errors", (victim["order_id"]["S"], victim["error_hash"]["S"]), MISSING)}
    assert {(d.family, d.key, d.kind) for d in whole.differences} == expected
    differences, rows = by_segment(local_dynamo.client, rebuilder, plan)
    assert sorted(differences) == sorted(expected)  # each once: no segment reports another's row
    assert rows == whole.rows and rows["inventory"] == 7  # live rows: A..H without B


def test_tables_that_place_keys_in_different_segments_compare_the_same(rebuilt, local_dynamo):
    _, rebuilder, plan, _ = rebuilt
    aligned = by_segment(local_dynamo.client, rebuilder, plan)
    for table in (plan.targets["inventory"], plan.targets["pending-errors"]):
        shifted = by_segment(ShiftedSegments(local_dynamo.client, table), rebuilder, plan)
        assert sorted(shifted[0]) == sorted(aligned[0]) and shifted[1] == aligned[1]


def test_a_segment_catches_its_streams_up_to_the_live_version_and_proves_them_equal(equal, local_dynamo):
    stack, rebuilder, plan = equal
    for sku in "AE":  # appended after the rebuild and applied live: the rebuilt side is behind
        stack.store.append(f"sku:{sku}", [NewEvent("dynafold.inventory.stock_adjusted.v2",
                                                   {"sku": sku, "delta": 3, "reason": "restock"})])
    stack.drain()
    caught_up, differences = 0, []
    for segment in range(SEGMENTS):
        settled = comparer(local_dynamo.client, rebuilder, plan).compare(5.0, poll_seconds=0.05, segments=[segment])
        caught_up += settled.caught_up
        differences += settled.comparison.differences
    assert caught_up == 2 and differences == []
    after = comparer(local_dynamo.client, rebuilder, plan)
    assert sum(after.catch_up_segments([s]).caught_up for s in range(SEGMENTS)) == 0


class CountingQueries:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries = 0

    def query(self, **request: Any) -> Any:
        self.queries += 1
        return self._client.query(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_streams_seen_whole_on_both_sides_are_decided_from_the_scans_without_a_query(equal, local_dynamo):
    _, rebuilder, plan = equal
    local_dynamo.client.update_item(TableName=rebuilder.live_tables["inventory"], Key={"sku": {"S": "A"}},
                                    UpdateExpression="SET physical = :p", ExpressionAttributeValues={":p": {"N": "99"}})
    counting = CountingQueries(local_dynamo.client)
    comparison = comparer(counting, rebuilder, plan).compare(5.0).comparison
    assert [(d.family, d.key, d.kind) for d in comparison.differences] == [("inventory", ("A",), DIFFERENT)]
    assert counting.queries == 0  # equal rows, and a difference at one version: no stream needed a second look
