"""Delivery as Lambda's event source mapping makes it at ParallelizationFactor F: a shard's records
dealt to F concurrent batch processors by item key (processors/local/stream_runner.py ``lane_of``,
the same dealing the local runner does), each batching its records in order and retrying a failed
batch from its lowest failed record, the F batches of a round in turn. Only each item's order is kept
("in-order processing at the item (partition and sort key) level",
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html); every event is its own item."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from processors.local.stream_runner import lane_of
from projections.batch import Entry

# One batch handed over; answers the sequence numbers it failed (empty: all done).
Handle = Callable[[list[Entry]], set[str]]


def lane(entry: Entry, factor: int) -> int:
    """The lane of a delivered event: its item key on the event table is (stream, version)."""
    version = entry.event.version if entry.event is not None else 0
    record: dict[str, Any] = {"dynamodb": {"Keys": {"stream": {"S": entry.stream}, "version": {"N": str(version)}}}}
    return lane_of(record, factor)


def deliver_in_lanes(entries: Sequence[Entry], batch_size: int, factor: int, handle: Handle) -> None:
    """Deliver every entry until done, lane by lane as above; fails the test if it never ends."""
    lanes = [[e for e in entries if lane(e, factor) == n] for n in range(factor)]
    positions = [0] * factor
    for round_number in range(sum(map(len, lanes)) * 20 + 20):
        waiting = [n for n in range(factor) if positions[n] < len(lanes[n])]
        if not waiting:
            return
        first = round_number % len(waiting)
        for n in waiting[first:] + waiting[:first]:
            batch = lanes[n][positions[n]:positions[n] + batch_size]
            failed = handle(batch)
            if not failed:
                positions[n] += len(batch)
            else:
                positions[n] += min(i for i, e in enumerate(batch) if e.sequence_number in failed)
    raise AssertionError("delivery did not converge")
