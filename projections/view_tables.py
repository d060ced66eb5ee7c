"""Bulk access to whole view tables, for rebuilds: batched puts into a fresh copy, and full reads.

Live processing writes rows one stream at a time through ``ViewStore`` (conditional, guarded by
the head version). A rebuild fills a table nobody else writes yet, so it puts the rows of many
streams with BatchWriteItem, 25 items a request, from several threads, at a bounded rate.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from events.errors import DynafoldError
from events.scan import parallel_scan
from projections.rate_limit import RateLimiter
from projections.view import STREAM_ATTR, VERSION_ATTR, Row
from projections.view_store import to_item

BATCH_WRITE_LIMIT = 25
_MAX_BACKOFF = 2.0
# Retries of UnprocessedItems that write nothing at all before the writer gives up and raises
# (about 15 s of backoff): a table that keeps refusing every item must not hang a rebuild.
MAX_STALLED_ATTEMPTS = 10


class UnwrittenItems(DynafoldError):
    """BatchWriteItem kept returning items unprocessed: the rebuild stops rather than lose them."""


class BulkWriter:
    """Puts rows with BatchWriteItem, retrying unprocessed items with backoff.

    ``max_rate`` caps items written per second (all threads together); ``None`` = as fast as the
    table takes them. Use as a context manager, or call ``flush()`` before trusting ``written``.
    """

    def __init__(self, client: Any, *, workers: int = 4, max_rate: float | None = None,
                 limiter: RateLimiter | None = None, pool: ThreadPoolExecutor | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._sleep = sleep
        # Writers of several producers may share one pool, so no thread idles while another has work.
        self._own_pool = pool is None
        self._pool = pool or ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-writer")
        self._slots = threading.BoundedSemaphore(workers * 2)  # back-pressure on the producer
        # Several writers may share one limiter, so the cap holds for a whole rebuild.
        self._limiter = limiter or RateLimiter(max_rate, time.monotonic, time.sleep)
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self.written = 0

    def put(self, table: str, row: Row) -> None:
        self.put_item(table, to_item(row))

    def put_item(self, table: str, item: dict[str, Any]) -> None:
        """A low-level item (already DynamoDB-typed), e.g. prepared by a benchmark."""
        self._pending.append((table, item))
        if len(self._pending) >= BATCH_WRITE_LIMIT:
            self._submit()

    def flush(self) -> int:
        """Write everything buffered and wait; raises the first write error. Returns items written."""
        if self._pending:
            self._submit()
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()
        return self.written

    def close(self) -> None:
        if self._own_pool:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> "BulkWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.flush()
        finally:
            self.close()

    def _submit(self) -> None:
        batch, self._pending = self._pending, []
        self._slots.acquire()
        # A failed batch stops the producer at its next batch instead of after the whole segment.
        failed = next((f for f in self._futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            self._slots.release()
            failed.result()
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._pool.submit(self._write, batch))

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            self._limiter.acquire(len(batch))
            request: dict[str, list[dict[str, Any]]] = {}
            for table, item in batch:
                request.setdefault(table, []).append({"PutRequest": {"Item": item}})
            attempt = stalled = 0
            while request:
                sent = _count(request)
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if request:  # throttled: back off, then send only what was not written
                    stalled = stalled + 1 if _count(request) >= sent else 0
                    if stalled >= MAX_STALLED_ATTEMPTS:
                        raise UnwrittenItems(f"{_count(request)} items still unprocessed after {stalled} "
                                             "BatchWriteItem attempts that wrote nothing")
                    attempt += 1
                    self._sleep(min(_MAX_BACKOFF, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            with self._lock:
                self.written += len(batch)
        finally:
            self._slots.release()


def _count(request: Mapping[str, list[Any]]) -> int:
    return sum(len(requests) for requests in request.values())


def scan_items(client: Any, table: str, segments: int = 4,
               attributes: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """Every item of a table (low-level form) by parallel scan, in no particular order; only
    ``attributes`` when given."""
    request: dict[str, Any] = {"TableName": table}
    if attributes:
        request["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(attributes)))
        request["ExpressionAttributeNames"] = {f"#a{i}": name for i, name in enumerate(attributes)}
    for _, page in parallel_scan(client, request, segments):
        if page:
            yield from page


def applied_versions(client: Any, tables: Mapping[str, str], segments: int = 4) -> dict[str, tuple[int, str]]:
    """Each stream's highest version a row of ``tables`` (family -> table) records as applied, with
    the family that records it: the projection's witness of how far the log reached (every row is
    folded from events of the log, so no row can be ahead of it). A table not there says nothing."""
    applied: dict[str, tuple[int, str]] = {}
    for family, table in tables.items():
        try:
            for item in scan_items(client, table, segments, (STREAM_ATTR, VERSION_ATTR)):
                if STREAM_ATTR in item and VERSION_ATTR in item:
                    stream, version = item[STREAM_ATTR]["S"], int(item[VERSION_ATTR]["N"])
                    if version > applied.get(stream, (0, ""))[0]:
                        applied[stream] = (version, family)
        except client.exceptions.ResourceNotFoundException:
            continue
    return applied


def table_stats(client: Any, table: str) -> Mapping[str, int]:
    """DynamoDB's approximate item count and size (refreshed about every six hours on AWS)."""
    description = client.describe_table(TableName=table)["Table"]
    return {"items": int(description.get("ItemCount", 0)), "bytes": int(description.get("TableSizeBytes", 0))}
