"""The rebuild state machine's executions on AWS (template.yaml RebuildStateMachine): which are
running and how far each got, read from its Distributed Map runs' item counts.

Shared by `dynafold rebuild --on-aws` (which follows one execution) and `dynafold status` (which
lists the running ones). https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeMapRun.html
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from projections.health.status import RebuildRun

STATE_MACHINE_ENV = "DYNAFOLD_REBUILD_STATE_MACHINE"
# What each of an execution's map runs does, in the order they start (statemachine/rebuild.asl.json).
PHASES = ("filling", "comparing", "carrying over after the switch")


def map_run_counts(sfn: Any, execution_arn: str) -> list[tuple[int, int]]:
    """(items succeeded, items in all) of each of the execution's map runs, in the order they
    started: the fill, the comparison, the carry-over after a switch. ListMapRuns promises no order
    and pages with nextToken."""
    runs: list[dict[str, Any]] = []
    request = {"executionArn": execution_arn}
    while True:
        page = sfn.list_map_runs(**request)
        runs.extend(page.get("mapRuns", []))
        if not page.get("nextToken"):
            break
        request = {"executionArn": execution_arn, "nextToken": page["nextToken"]}
    counts = []
    for run in sorted(runs, key=lambda run: run["startDate"]):
        items = sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
        counts.append((int(items.get("succeeded", 0)), int(items.get("total", 0))))
    return counts


def phase(counts: list[tuple[int, int]]) -> tuple[str, int, int]:
    """(what the execution does now, segments done, segments in all), from its map runs' counts."""
    if not counts:
        return "starting", 0, 0
    done, total = counts[-1]
    return PHASES[min(len(counts) - 1, len(PHASES) - 1)], done, total


class StepFunctionsRebuilds:
    """``RebuildsReader`` on AWS: the state machine's RUNNING executions (none configured: none)."""

    def __init__(self, sfn: Callable[[], Any], state_machine_arn: str | None) -> None:
        self._sfn = sfn
        self.state_machine_arn = state_machine_arn

    def in_progress(self) -> list[RebuildRun]:
        if not self.state_machine_arn:
            return []
        sfn = self._sfn()
        running: list[dict[str, Any]] = []
        request: dict[str, Any] = {"stateMachineArn": self.state_machine_arn, "statusFilter": "RUNNING"}
        while True:
            page = sfn.list_executions(**request)
            running.extend(page.get("executions", []))
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        found = []
        for execution in running:
            arn = execution["executionArn"]
            described = json.loads(sfn.describe_execution(executionArn=arn).get("input") or "{}")
            what, done, total = phase(map_run_counts(sfn, arn))
            found.append(RebuildRun(tuple(described.get("views") or ()), what, done,
                                    total or int(described.get("total_segments") or 0), arn,
                                    started=execution.get("startDate")))
        return found
