"""One parallel-scan segment of a rebuild: the unit of work a local process or a Lambda runs.

DynamoDB's parallel scan hands every item of one partition key (one stream) to one segment, in
sort-key (version) order, so a segment folds on its own with the same folds live processing uses
(``projections.rebuild.replay``) and its rows go into the new table version with BatchWriteItem
(``BulkWriter``). Nothing is shared between segments, so N workers fill the same tables as one.

A worker runs until its time budget is spent, then stops *between streams*: everything folded so
far is flushed, and it returns a continuation — the key of the last item of the last stream it
finished — from which the next invocation scans on (``ExclusiveStartKey``). The stream that was
open when the budget ran out is read again from its start next time; rewriting a stream's rows is
idempotent. A run that crashed may have written rows past its last continuation, and a stream can
lose rows between two reads (an error resolved meanwhile), so a *guarded* run (a resume, a retry)
also deletes the rows of each stream it writes that the fold no longer produces: no orphan rows.

See https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Scan.html#Scan.ParallelScan
(segments, ExclusiveStartKey/LastEvaluatedKey per segment).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from events.items import Item
from projections.rate_limit import RateLimiter
from projections.rebuild.replay import StreamRows, replay
from projections.view import View, stream_key
from projections.view_tables import BulkWriter

# A Lambda stops this long before its own timeout: the last flush and the response must fit.
LAMBDA_SAFETY_SECONDS = 20.0
_LOG_KEY = ("stream", "version")  # the event table's key schema (template.yaml EventsTable)


@dataclass(frozen=True)
class SegmentTask:
    """What one invocation does: which segment, from where, into which tables, for how long."""

    views: tuple[str, ...]  # view names (projections.registry)
    targets: Mapping[str, str]  # family -> the new version's physical table
    segment: int
    total_segments: int
    start_key: dict[str, Any] | None = None  # None: the segment's beginning
    guard: bool = False  # rows past start_key may exist from an interrupted run: delete what no longer folds
    budget_seconds: float = 600.0
    page_size: int | None = None
    max_write_rate: float | None = None  # items/s for this worker

    def __post_init__(self) -> None:
        if not 0 <= self.segment < self.total_segments:
            raise ValueError(f"segment {self.segment} is not in 0..{self.total_segments - 1}")
        if self.budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be > 0, got {self.budget_seconds}")

    def to_json(self) -> dict[str, Any]:
        return {"views": list(self.views), "targets": dict(self.targets), "segment": self.segment,
                "total_segments": self.total_segments, "start_key": self.start_key, "guard": self.guard,
                "budget_seconds": self.budget_seconds, "page_size": self.page_size,
                "max_write_rate": self.max_write_rate}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SegmentTask":
        return cls(views=tuple(data["views"]), targets=dict(data["targets"]), segment=int(data["segment"]),
                   total_segments=int(data["total_segments"]), start_key=data.get("start_key") or None,
                   guard=bool(data.get("guard")), budget_seconds=float(data.get("budget_seconds") or 600.0),
                   page_size=int(data["page_size"]) if data.get("page_size") else None,
                   max_write_rate=float(data["max_write_rate"]) if data.get("max_write_rate") else None)


@dataclass
class SegmentResult:
    segment: int
    next_key: dict[str, Any] | None  # where the next invocation starts; None with done
    done: bool
    events: int = 0  # of the streams finished in this invocation
    streams: int = 0
    rows: int = 0
    cleaned: int = 0  # stale rows deleted (guarded runs only)
    failed: list[str] = field(default_factory=list)  # "stream: error" of streams that no longer decode

    def to_json(self) -> dict[str, Any]:
        return {"segment": self.segment, "next_key": self.next_key, "done": self.done, "events": self.events,
                "streams": self.streams, "rows": self.rows, "cleaned": self.cleaned, "failed": self.failed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SegmentResult":
        return cls(int(data["segment"]), data.get("next_key") or None, bool(data["done"]), int(data["events"]),
                   int(data["streams"]), int(data["rows"]), int(data.get("cleaned", 0)), list(data.get("failed", [])))


def views_named(names: Sequence[str]) -> dict[str, View[Any]]:
    """category -> view for the named views (projections.registry)."""
    from projections.registry import VIEWS_BY_NAME

    unknown = [name for name in names if name not in VIEWS_BY_NAME]
    if unknown:
        raise ValueError(f"unknown views {unknown} (one of {', '.join(VIEWS_BY_NAME)})")
    return {VIEWS_BY_NAME[name].category: VIEWS_BY_NAME[name] for name in names}


def active_overlap(targets: Mapping[str, str], active: Mapping[str, str]) -> list[str]:
    """Targets that are tables in use. IAM cannot tell versions apart (they are named at run time,
    ``<family>-v*``), so the code refuses to write a rebuild into the active version."""
    in_use = set(active.values())
    return sorted(table for table in targets.values() if table in in_use)


class SegmentWorker:
    """Folds one segment of the event table into the new table version, within a time budget."""

    def __init__(self, client: Any, events_table: str, *, writers: int = 4,
                 clock: Callable[[], float] = time.monotonic,
                 active: Callable[[], Mapping[str, str]] | None = None) -> None:
        self._client = client
        self._active = active  # family -> table in use, never a target
        self._events_table = events_table
        self._writers = writers
        self._clock = clock

    def run(self, task: SegmentTask) -> SegmentResult:
        views = views_named(task.views)
        if self._active is not None:
            overlap = active_overlap(task.targets, self._active())
            if overlap:
                raise ValueError(f"refusing to rebuild into active tables {overlap}")
        deadline = self._clock() + task.budget_seconds
        result = SegmentResult(task.segment, task.start_key, False)
        request: dict[str, Any] = {"TableName": self._events_table, "Segment": task.segment,
                                   "TotalSegments": task.total_segments}
        if task.page_size:
            request["Limit"] = task.page_size
        scan_from = task.start_key
        open_stream: list[Item] = []  # the items of the stream being read, which may span pages
        limiter = RateLimiter(task.max_write_rate, time.monotonic, time.sleep)
        # The next page is read while this one folds and writes: the engine's scan time overlaps the
        # fold instead of leaving the writers idle at every page.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="segment-scan") as reader, \
                BulkWriter(self._client, workers=self._writers, limiter=limiter) as writer:
            next_page = reader.submit(self._scan, request, scan_from)
            while True:
                page = next_page.result()
                scan_from = page.get("LastEvaluatedKey")
                if scan_from is not None:
                    next_page = reader.submit(self._scan, request, scan_from)
                out_of_time = False
                for item in page.get("Items", ()):
                    if open_stream and item["stream"]["S"] != open_stream[0]["stream"]["S"]:
                        self._finish(open_stream, views, task, writer, result)
                        open_stream = []
                        # Out of time (or told to stop) between two streams: the next slice starts
                        # after the one just finished (its last item is next_key), mid-page or not.
                        if self._clock() >= deadline:
                            out_of_time = True
                            break
                    open_stream.append(item)
                if out_of_time:
                    break
                if scan_from is None:  # the segment's end closes its last stream
                    if open_stream:
                        self._finish(open_stream, views, task, writer, result)
                    result.next_key, result.done = None, True
                    break
                # Stop only after finishing a stream, so every invocation makes progress.
                if self._clock() >= deadline and result.next_key != task.start_key:
                    break
        return result  # the writer flushed on leaving the block: next_key's rows are all written

    def _scan(self, request: Mapping[str, Any], start_key: dict[str, Any] | None) -> dict[str, Any]:
        page: dict[str, Any] = self._client.scan(**request, **({"ExclusiveStartKey": start_key} if start_key else {}))
        return page

    def _finish(self, items: list[Item], views: Mapping[str, View[Any]], task: SegmentTask, writer: BulkWriter,
                result: SegmentResult) -> None:
        for folded in replay(items, views):
            result.events += folded.events
            result.streams += 1
            if folded.error:
                result.failed.append(f"{folded.stream}: {folded.error}")
                continue
            if task.guard:
                result.cleaned += self._delete_stale(folded, views, task)
            for family, row in folded.rows:
                writer.put(task.targets[family], row)
            result.rows += len(folded.rows)
        result.next_key = {name: items[-1][name] for name in _LOG_KEY}

    def _delete_stale(self, folded: StreamRows, views: Mapping[str, View[Any]], task: SegmentTask) -> int:
        """Rows of the stream's key in the view's own table that the fold no longer produces (insert-only
        extras are never deleted, live processing keeps them too)."""
        view = views.get(folded.stream.split(":", 1)[0])
        if view is None:
            return 0
        table = task.targets[view.table]
        keys = [view.key_attr] if view.sort_attr is None else [view.key_attr, view.sort_attr]
        wanted = {tuple(str(row[k]) for k in keys) for family, row in folded.rows if family == view.table}
        deleted = 0
        request: dict[str, Any] = {
            "TableName": table, "KeyConditionExpression": "#k = :k", "ConsistentRead": True,
            "ProjectionExpression": ", ".join(f"#p{i}" for i in range(len(keys))),
            "ExpressionAttributeNames": {"#k": view.key_attr, **{f"#p{i}": k for i, k in enumerate(keys)}},
            "ExpressionAttributeValues": {":k": {"S": stream_key(folded.stream)}},
        }
        while True:
            page = self._client.query(**request)
            for item in page.get("Items", ()):
                if tuple(str(next(iter(item[k].values()))) for k in keys) not in wanted:
                    self._client.delete_item(TableName=table, Key=item)
                    deleted += 1
            if "LastEvaluatedKey" not in page:
                return deleted
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def lambda_budget(task_budget: float, remaining_ms: int | None) -> float:
    """The budget of an invocation: the task's, cut to what Lambda leaves minus a safety margin."""
    if remaining_ms is None:
        return task_budget
    return max(1.0, min(task_budget, remaining_ms / 1000.0 - LAMBDA_SAFETY_SECONDS))
