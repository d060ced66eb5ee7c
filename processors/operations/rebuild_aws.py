"""`dynafold rebuild --on-aws`: start the rebuild state machine (template.yaml RebuildStateMachine)
and follow it; `dynafold rebuild status` reattaches to the last one started from here.

The execution runs on AWS whatever happens to this process: Ctrl-C stops following, never the
execution. Progress comes from the Distributed Map run's item counts (segments done of all), turned
into events with the log's size, so the bar shows events/s and an ETA like a local rebuild.
https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeMapRun.html
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.errors import DynafoldError
from processors.adapters.rebuild_executions import PHASES, map_run_counts
from processors.operations.progress import Progress
from processors.services.rebuild_compare import MAX_AWS_SEGMENTS
from projections.rebuild.comparison import TableRule
from projections.rebuild.plan import SWITCH_WAIT_SECONDS

# ExecutionStatus values of an execution that has not ended: a redriven execution keeps its ARN and
# goes PENDING_REDRIVE -> RUNNING, so following (and `rebuild status`) goes on through a redrive.
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html
IN_PROGRESS = frozenset({"RUNNING", "PENDING_REDRIVE"})
SLICE_SECONDS = 840.0  # a segment worker's budget per invocation: inside Lambda's 900 s, with margin


@dataclass(frozen=True)
class AwsOptions:
    segments: int = 64
    max_concurrency: int = 64
    settle_seconds: float = 120.0
    max_write_rate: float | None = None  # items/s for the whole rebuild (split across the concurrent workers)

    def __post_init__(self) -> None:
        if not 1 <= self.segments <= MAX_AWS_SEGMENTS:  # the compare map's answers pass inline to the verdict
            raise DynafoldError(f"--segments must be 1..{MAX_AWS_SEGMENTS} on AWS, got {self.segments}")
        if not 1 <= self.max_concurrency <= 10_000:  # the Distributed Map's own limit
            raise DynafoldError(f"--max-concurrency must be 1..10000, got {self.max_concurrency}")


def execution_input(views: Sequence[str], live: Mapping[str, str], targets: Mapping[str, str],
                    rules: Mapping[str, TableRule], options: AwsOptions, *, switch: bool) -> dict[str, Any]:
    """What RebuildStateMachine reads (statemachine/rebuild.asl.json: every `$.name` it selects)."""
    concurrent = min(options.segments, options.max_concurrency)
    return {
        "views": list(views), "live": {family: live[family] for family in targets}, "targets": dict(targets),
        "rules": {family: {"key_attr": r.key_attr, "sort_attr": r.sort_attr, "ttl_attr": r.ttl_attr,
                           "category": r.category, "sharded": list(r.sharded)} for family, r in rules.items()},
        "segments": list(range(options.segments)), "total_segments": options.segments,
        "max_concurrency": options.max_concurrency, "budget_seconds": SLICE_SECONDS,
        "max_write_rate": options.max_write_rate / concurrent if options.max_write_rate else None,
        "settle_seconds": options.settle_seconds, "switch": switch, "switch_wait_seconds": SWITCH_WAIT_SECONDS,
    }


def state_file(state_dir: Path, prefix: str) -> Path:
    return state_dir / "rebuilds" / f"{prefix}aws-execution.json"


def start(sfn: Any, state_machine: str, payload: Mapping[str, Any], state_dir: Path, prefix: str,
          total_events: int) -> str:
    # Unique per start (two in one second must not collide: StartExecution refuses a name already
    # used), the unique part first so the 80-character limit only ever cuts the views' names.
    name = f"rebuild-{int(time.time())}-{uuid.uuid4().hex[:8]}-{'-'.join(payload['views'])}"[:80]
    arn: str = sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(payload))["executionArn"]
    path = state_file(state_dir, prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"execution_arn": arn, "total_events": total_events, "views": payload["views"],
                                "targets": payload["targets"]}, indent=2))
    return arn


def execution_running(sfn: Any, execution_arn: str) -> bool:
    """Whether the execution still runs (a rebuild lock it holds is then held)."""
    from botocore.exceptions import ClientError

    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"] in IN_PROGRESS
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise


def last_started(state_dir: Path, prefix: str) -> dict[str, Any]:
    path = state_file(state_dir, prefix)
    if not path.exists():
        raise DynafoldError("no rebuild was started on AWS from here (see `dynafold rebuild VIEW --on-aws`)")
    return dict(json.loads(path.read_text()))


def follow(sfn: Any, execution_arn: str, total_events: int, bar: Progress, *, poll: float = 5.0,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll until the execution ends; returns {status, output (the compare step's verdict) or error}."""
    shown = 0
    phases: dict[int, tuple[int, int]] = {}  # what was said of the later map runs
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        counts = map_run_counts(sfn, execution_arn)
        done, total = counts[0] if counts else (0, 0)
        reached = total_events * done // total if total else 0
        if reached > shown:
            bar.advance(reached - shown)
            shown = reached
        for index, progress in enumerate(counts[1:], start=1):  # the bar is the fill's; the rest are said
            if phases.get(index) != progress:
                phases[index] = progress
                bar.say(f"{PHASES[min(index, len(PHASES) - 1)]}: {progress[0]}/{progress[1]} segments")
        if described["status"] not in IN_PROGRESS:
            bar.finish()
            output = json.loads(described.get("output") or "null")
            return {"status": described["status"], "output": output,
                    "error": described.get("error"), "cause": described.get("cause")}
        sleep(poll)
