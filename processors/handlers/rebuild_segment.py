"""RebuildSegmentFunction: one slice of one parallel-scan segment of a rebuild (Step Functions calls it).

Thin: the rebuild state machine (template.yaml RebuildStateMachine) passes a ``SegmentTask`` as
JSON and loops on the returned continuation until the segment is done. The budget is cut to the
invocation's remaining time so the worker always returns cleanly before Lambda's timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from processors.services.rebuild_segment import SegmentTask, SegmentWorker, lambda_budget


def make_handler(worker: SegmentWorker) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        given = SegmentTask.from_json(event)
        remaining = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None
        # A Step Functions retry of this state (a crash or a throttle) re-runs from the same
        # continuation, past which the failed attempt may have written rows: guard them.
        guard = given.guard or int(event.get("attempt") or 0) > 0
        result = worker.run(replace(given, budget_seconds=lambda_budget(given.budget_seconds, remaining), guard=guard))
        # The output is the next slice's input (the state machine loops on it until done), with the
        # segment's running totals.
        totals = {name: int((event.get("totals") or {}).get(name, 0)) + getattr(result, name)
                  for name in ("events", "streams", "rows", "cleaned")}
        return {**replace(given, start_key=result.next_key, guard=False).to_json(), "done": result.done,
                "totals": totals, "failed": result.failed[:20]}

    return handle
