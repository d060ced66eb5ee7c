"""The AWS rebuild end to end: statemachine/rebuild.asl.json itself, run by the local Step Functions
stand-in over the functions the composition root builds (the Lambda handlers), on DynamoDB Local.
Fill map, compare map, verdict, switch, wait and catch-up map, with live traffic flowing."""

from __future__ import annotations

import json
import threading
import time

import pytest

from events.envelope import NewEvent
from processors.local.step_functions import ExecutionFailed, LocalStateMachine, MapRun
from processors.operations.asl import DEFINITION, substituted
from processors.operations.rebuild import table_rule, template_base
from processors.operations.rebuild_aws import AwsOptions, execution_input
from processors.operations.tables import create_copy
from projections.rebuild.comparison import DIFFERENT
from projections.registry import VIEWS_BY_NAME
from tests.integration.test_rebuild import append_history, make_rebuilder, make_stack
from tests.integration.test_rebuild_compare_segments import HISTORY

VIEWS = [VIEWS_BY_NAME["inventory"], VIEWS_BY_NAME["pending-errors"]]
ARNS = {"RebuildSegmentFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:test-rebuild-segment",
        "RebuildCompareFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:test-rebuild-compare"}


def machine(stack, map_runs: list[MapRun]) -> LocalStateMachine:
    definition = json.loads(substituted(DEFINITION.read_text(), ARNS))
    functions = {ARNS["RebuildSegmentFunctionArn"]: stack.root.handler("rebuild-segment"),
                 ARNS["RebuildCompareFunctionArn"]: stack.root.handler("rebuild-compare")}
    return LocalStateMachine(definition, functions, sleep=lambda seconds: time.sleep(min(seconds, 0.2)),
                             on_map_run=map_runs.append)


def started(local_dynamo, stack, tmp_path, *, switch: bool, segments: int = 4):
    """The execution input the CLI sends, with the new version's tables created as the CLI does."""
    rebuilder = make_rebuilder(local_dynamo.client, stack.store, tmp_path, views=VIEWS)
    plan, _ = rebuilder.plan(restart=True)
    for family, table in plan.targets.items():
        create_copy(local_dynamo.client, template_base(family), table)
    payload = execution_input(plan.views, rebuilder.live_tables, plan.targets,
                              {family: table_rule(family) for family in plan.targets},
                              AwsOptions(segments=segments, max_concurrency=2, settle_seconds=20), switch=switch)
    return rebuilder, plan, payload


def test_the_definition_rebuilds_proves_and_switches_with_every_segment_run_by_its_own_child(local_dynamo, tmp_path):
    stack = make_stack(local_dynamo.endpoint_url, local_dynamo.access_key, tmp_path)
    events = append_history(stack.store, HISTORY)
    stack.drain()
    _, plan, payload = started(local_dynamo, stack, tmp_path, switch=True)
    runs: list[MapRun] = []
    output = machine(stack, runs).run(payload)
    assert output["equal"] and output["difference_count"] == 0, output
    assert output["rows_compared"]["inventory"] == 8 and output["rows_compared"]["pending-errors"] > 0
    assert output["switched"] == {family: "v2" for family in plan.targets}
    assert json.loads((tmp_path / "views.json").read_text())["versions"] == output["switched"]
    assert output["after_switch"]["caught_up"] == [0, 0, 0, 0]  # nothing moved: nothing to carry over
    assert [(run.state, run.total, run.succeeded) for run in runs] == [
        ("FillSegments", 4, 4), ("CompareSegments", 4, 4), ("CatchUpSegments", 4, 4)]
    assert events > 0


def test_a_corrupted_live_row_makes_the_verdict_different_and_nothing_switches(local_dynamo, tmp_path):
    stack = make_stack(local_dynamo.endpoint_url, local_dynamo.access_key, tmp_path)
    append_history(stack.store, HISTORY)
    stack.drain()
    rebuilder, _, payload = started(local_dynamo, stack, tmp_path, switch=True)
    local_dynamo.client.update_item(TableName=rebuilder.live_tables["inventory"], Key={"sku": {"S": "D"}},
                                    UpdateExpression="SET physical = :p", ExpressionAttributeValues={":p": {"N": "77"}})
    runs: list[MapRun] = []
    output = machine(stack, runs).run(payload)
    assert not output["equal"] and output["difference_count"] == 1 and output["switched"] is None
    assert output["differences"] == [f"inventory D: {DIFFERENT}"]
    assert [run.state for run in runs] == ["FillSegments", "CompareSegments"]  # no switch, no carry-over
    assert not (tmp_path / "views.json").exists()


def test_a_failing_function_fails_the_execution_after_its_retries(local_dynamo, tmp_path):
    stack = make_stack(local_dynamo.endpoint_url, local_dynamo.access_key, tmp_path)
    append_history(stack.store, HISTORY)
    _, plan, payload = started(local_dynamo, stack, tmp_path, switch=False)
    payload["live"] = dict(plan.targets)  # the compare step refuses: it would write into what it reads as live
    with pytest.raises(ExecutionFailed) as failed:
        machine(stack, []).run(payload)
    assert failed.value.error == "States.ExceedToleratedFailureThreshold"
    assert "ValueError" in failed.value.cause


def test_under_continuous_traffic_the_execution_proves_equal_switches_and_loses_no_event(local_dynamo, tmp_path):
    """≥ 10 appends/s across sku and order streams with the live stack running throughout: the
    compare map settles each stream at a common version, the switch happens, and what the old
    tables got while the version caches expired is carried over (a later rebuild finds the new
    tables equal to the log)."""
    stack = make_stack(local_dynamo.endpoint_url, local_dynamo.access_key, tmp_path)
    append_history(stack.store, HISTORY)
    stack.drain()
    stop = threading.Event()
    appended: list[float] = []

    def traffic(part: int) -> None:  # four writers at 4 appends/s each
        store = local_dynamo.store()
        i, due = 0, time.monotonic()
        while not stop.wait(max(0.0, due - time.monotonic())):
            due += 1 / 4
            sku = "ABCDEFGH"[(i * 4 + part) % 8]
            store.append(f"sku:{sku}", [NewEvent("dynafold.inventory.stock_adjusted.v2",
                                                 {"sku": sku, "delta": 1, "reason": "restock"})])
            appended.append(time.monotonic())
            i += 1

    writers = [threading.Thread(target=traffic, args=(part,)) for part in range(4)]
    threads = [*stack.run_forever(stop), *writers]
    for writer in writers:
        writer.start()
    try:
        _, plan, payload = started(local_dynamo, stack, tmp_path, switch=True)
        payload["switch_wait_seconds"] = 2  # the local stack reads a switch at once (the file's mtime)
        output = machine(stack, []).run(payload)
        time.sleep(1.0)  # traffic goes on into the new tables
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert output["equal"], output
    assert output["switched"] == {family: "v2" for family in plan.targets}
    span = appended[-1] - appended[0]
    assert len(appended) / span >= 10, f"{len(appended)} appends in {span:.1f} s"
    stack.drain()
    check = make_rebuilder(local_dynamo.client, stack.store, tmp_path, views=VIEWS)
    plan, _ = check.plan()
    assert check.live_tables["inventory"].endswith("-v2")
    assert check.run(plan).comparison.equal  # the switched tables hold every event the log holds
