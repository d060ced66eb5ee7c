"""The segment worker, the unit of a rebuild: slices that stop between streams and continue, the
same tables from 1 and N worker processes, no orphan rows after a resume, and the Lambda entry."""

from __future__ import annotations

import itertools
from functools import partial
from types import SimpleNamespace

from processors.adapters.aws import dynamodb_client
from processors.handlers.rebuild_segment import make_handler
from processors.operations.rebuild import template_base
from processors.operations.tables import create_copy
from processors.services.rebuild_segment import SegmentTask, SegmentWorker
from projections.registry import VIEWS
from projections.view_tables import scan_items
from tests.integration.test_rebuild import append_history, make_rebuilder, make_stack

HISTORY = {
    "sku": [(sku, kind, n) for n in range(6) for kind in range(5) for sku in "ABC"],
    "order": [(order, kind, n) for n in range(8) for kind in range(3) for order in ("o1", "o2", "o3")],
    "delivery": ["s1:m1", "s1:m2", "s2:m1"],
    "delivery_len": 4,
}
NAMES = tuple(view.name for view in VIEWS)


def filled(local_dynamo, tmp_path, drain=False):
    """The history in the log; drained through the live stack only where live tables are compared."""
    stack = make_stack(local_dynamo.endpoint_url, local_dynamo.access_key, tmp_path)
    events = append_history(stack.store, HISTORY)
    if drain:
        stack.drain()
    return stack, events


def new_targets(client, version: str) -> dict[str, str]:
    families = [family for view in VIEWS for family in view.families]
    targets = {family: f"test-{family}-{version}" for family in families}
    for family, table in targets.items():
        create_copy(client, template_base(family), table)
    return targets


def table_contents(client, targets) -> dict[str, list]:
    return {family: sorted(map(repr, scan_items(client, table, 1))) for family, table in targets.items()}


def run_to_end(worker, task) -> tuple[int, int, dict]:
    slices, totals = 0, {"events": 0, "rows": 0}
    while True:
        result = worker.run(task)
        slices += 1
        totals = {k: totals[k] + getattr(result, k) for k in totals}
        if result.done:
            return slices, totals, {}
        assert result.next_key and result.next_key != task.start_key
        task = SegmentTask(task.views, task.targets, task.segment, task.total_segments, result.next_key,
                           budget_seconds=task.budget_seconds, page_size=task.page_size)


def test_slices_stop_between_streams_and_continue_to_the_same_tables(local_dynamo, tmp_path):
    stack, events = filled(local_dynamo, tmp_path)
    client = local_dynamo.client
    whole, sliced = new_targets(client, "v2"), new_targets(client, "v3")
    one_go = SegmentWorker(client, stack.store.events_table)
    for segment in range(2):
        assert one_go.run(SegmentTask(NAMES, whole, segment, 2)).done
    # A clock past the deadline at every look: each slice finishes one stream and stops; pages of
    # 3 items split streams across pages (and across slices).
    ticks = itertools.count(0, 1000)
    hurried = SegmentWorker(client, stack.store.events_table, clock=lambda: float(next(ticks)))
    counted = 0
    slices = 0
    for segment in range(2):
        n, totals, _ = run_to_end(hurried, SegmentTask(NAMES, sliced, segment, 2, budget_seconds=1, page_size=3))
        slices += n
        counted += totals["events"]
    assert slices == 9 and counted == events  # one stream per slice: each stops as soon as it may
    renamed = {family: rows for family, rows in table_contents(client, whole).items()}
    assert renamed == table_contents(client, sliced)
    assert any(renamed.values())


def test_one_and_several_worker_processes_fill_identical_tables_and_compare_the_same(local_dynamo, tmp_path):
    stack, _ = filled(local_dynamo, tmp_path, drain=True)
    factory = partial(dynamodb_client, local_dynamo.endpoint_url, access_key=local_dynamo.access_key)
    results = []
    for workers in (1, 3):
        rebuilder = make_rebuilder(local_dynamo.client, stack.store, tmp_path, segments=6, workers=workers,
                                   slice_seconds=0.05, page_size=5)
        rebuilder._client_factory = factory
        plan, _ = rebuilder.plan(restart=True)
        result = rebuilder.run(plan)
        results.append((plan, result))
    (one, one_result), (many, many_result) = results
    assert one.targets != many.targets
    assert one_result.comparison.equal and many_result.comparison.equal
    assert one_result.comparison.rows == many_result.comparison.rows
    assert (one.events, one.streams, one.rows) == (many.events, many.streams, many.rows)
    assert table_contents(local_dynamo.client, one.targets) == table_contents(local_dynamo.client, many.targets)


def test_a_guarded_slice_deletes_rows_a_crashed_run_left_that_the_fold_no_longer_produces(local_dynamo, tmp_path):
    stack, _ = filled(local_dynamo, tmp_path)
    client = local_dynamo.client
    targets = new_targets(client, "v2")
    table = targets["pending-errors"]
    # What an interrupted run may leave: a row of a stream's error since resolved (and of a
    # stream it never reached, which a fold of that stream also owns).
    for order in ("o1", "o3"):
        client.put_item(TableName=table, Item={"order_id": {"S": order}, "error_hash": {"S": "gone"},
                                               "stream_id": {"S": f"order:{order}"}, "stream_version": {"N": "1"}})
    worker = SegmentWorker(client, stack.store.events_table)
    unguarded = worker.run(SegmentTask(NAMES, targets, 0, 1))
    assert unguarded.cleaned == 0
    assert sum(1 for item in scan_items(client, table, 1) if item["error_hash"]["S"] == "gone") == 2
    guarded = worker.run(SegmentTask(NAMES, targets, 0, 1, guard=True))
    assert guarded.cleaned == 2 and guarded.rows == unguarded.rows
    assert not [item for item in scan_items(client, table, 1) if item["error_hash"]["S"] == "gone"]


def test_the_lambda_entry_loops_on_its_own_output_until_the_segment_is_done(local_dynamo, tmp_path):
    stack, events = filled(local_dynamo, tmp_path)
    targets = new_targets(local_dynamo.client, "v2")
    ticks = itertools.count(0, 1000)
    handler = make_handler(SegmentWorker(local_dynamo.client, stack.store.events_table,
                                         clock=lambda: float(next(ticks))))
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 900_000)
    state = SegmentTask(NAMES, targets, 0, 1, page_size=4).to_json()
    for _ in range(500):
        state = handler(state, context)
        if state["done"]:
            break
    assert state["done"] and state["totals"]["events"] == events and state["start_key"] is None
