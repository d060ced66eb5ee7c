"""Parallel Scan of a DynamoDB table: one thread per segment, pages handed to the caller in one thread.

Shared by the event store (replay, audits) and the view-table store (rebuild comparison), so both
read a table the same way. Pages of one segment arrive in that segment's order.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

Item = dict[str, dict[str, Any]]


def scan_segment(client: Any, request: dict[str, Any], segment: int, total: int) -> Iterator[list[Item]]:
    """Every page of one segment, in order (``request`` is the Scan request without the segment)."""
    kwargs: dict[str, Any] = {**request, "Segment": segment, "TotalSegments": total}
    while True:
        page = client.scan(**kwargs)
        yield page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def parallel_scan(
    client: Any, request: dict[str, Any], total: int, segments: Sequence[int] | None = None
) -> Iterator[tuple[int, list[Item] | None]]:
    """(segment, page) for every page of the given segments (all by default), read in parallel;
    ``(segment, None)`` marks the end of a segment. An error in any reader is raised here."""
    if total < 1:
        raise ValueError("segments must be >= 1")
    wanted = list(range(total)) if segments is None else list(segments)
    if not wanted:
        return
    pages: queue.Queue[tuple[int, list[Item] | None] | BaseException] = queue.Queue(maxsize=len(wanted) * 4)
    stop = threading.Event()

    def read(segment: int) -> None:
        try:
            for page in scan_segment(client, request, segment, total):
                if stop.is_set():
                    return
                pages.put((segment, page))
            pages.put((segment, None))
        except BaseException as error:  # noqa: BLE001 - surfaced in the consuming thread
            pages.put(error)

    threads = [threading.Thread(target=read, args=(s,), daemon=True, name=f"scan-{s}") for s in wanted]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(wanted):
            got = pages.get()
            if isinstance(got, BaseException):
                raise got
            if got[1] is None:
                finished += 1
            yield got
    finally:
        stop.set()  # a consumer that stops early releases the readers
        while any(t.is_alive() for t in threads):
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.05)
