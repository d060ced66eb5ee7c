"""The event log in memory: the ``EventLog`` port for unit tests, with the DynamoDB store's semantics.

Appends are prepared, checked, linked and guarded by the same functions as ``events.store``
(``events.appending``), so the items kept here are the ones DynamoDB would hold, hash for hash;
reads and audits are the same ``DerivedReads``. One lock makes every append one atomic step, as a
DynamoDB transaction is. The contract tests in ``tests/contract/`` hold both logs to one behaviour.

Where the engines must differ: there are no lost races here, so an "any" append never waits; and
a stream whose recorded head is ahead of its events (its tail was removed behind the store's back)
refuses appends at once with ``StreamContended`` where DynamoDB retries until its timeout.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone

from events.appending import (
    ANY,
    IDEMPOTENCY_TTL,
    AppendResult,
    ExpectedVersion,
    check_expected,
    check_plans,
    guard_item,
    guard_result,
    guard_results,
    head_of,
    link,
    linked_result,
    original,
    prepare,
    recorded_head,
    request_hash,
    streams_request_hash,
)
from events.chain import RecordedHead
from events.envelope import GENESIS_HASH, PlannedAppend, StoredEvent
from events.errors import StreamContended, VersionConflict
from events import catalogue, stream_catalogue
from events.items import Item
from events.sharding import Key, MergedPage, merge_page
from events.stream_catalogue import StreamEntry
from events.ports import DerivedReads, ScanPage


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class InMemoryEventLog(DerivedReads):
    """Streams of stored items, idempotency guards and recorded heads, in dicts behind one lock.

    ``items``, ``guards`` and ``heads`` are the tables themselves: a test may alter them to play
    an attacker (or an operator) changing the log behind the store's back.
    """

    def __init__(
        self, *, clock: Callable[[], datetime] = _utcnow, idempotency_ttl: timedelta = IDEMPOTENCY_TTL
    ) -> None:
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._lock = threading.RLock()
        self.items: dict[str, dict[int, Item]] = {}  # stream -> version -> item
        self.guards: dict[str, Item] = {}  # idempotency key -> guard item
        self.heads: dict[str, Item] = {}  # stream -> recorded head item

    # ----------------------------------------------------------------- append

    def _append_prepared(
        self, stream: str, prepared: list[StoredEvent], expected_version: ExpectedVersion, key: str | None
    ) -> AppendResult:
        digest = request_hash(stream, prepared) if key else ""
        expected = check_expected(expected_version)
        with self._lock:
            if key is not None and key in self.guards:  # the guard decides first, as in the transaction
                return original(key, digest, self.guards[key])
            current = self._version(stream)
            base = current if expected == ANY else expected
            if base != current:
                raise VersionConflict(stream, expected_version, current)
            items, result = self._linked(stream, prepared, base, expected_version)
            self._write(stream, items, result)
            if key is not None:
                self.guards[key] = guard_item(key, digest, [result], self._clock(), self._idempotency_ttl)
            return result

    def append_streams(self, plans: Sequence[PlannedAppend], idempotency_key: str) -> list[AppendResult]:
        check_plans(plans, idempotency_key)
        prepared = [(plan.stream, prepare(plan.stream, plan.events, None, self._clock())) for plan in plans]
        digest = streams_request_hash(prepared)
        with self._lock:
            guard = self.guards.get(idempotency_key)
            if guard is not None:
                original(idempotency_key, digest, guard)  # raises if the key named another request
                return guard_results(guard)
            linked = [self._linked(stream, events, self._version(stream), ANY) for stream, events in prepared]
            for (stream, _), (items, result) in zip(prepared, linked, strict=True):
                self._write(stream, items, result)
            results = [result for _, result in linked]
            self.guards[idempotency_key] = guard_item(idempotency_key, digest, results, self._clock(),
                                                      self._idempotency_ttl, multi=True)
            return results

    def _linked(
        self, stream: str, prepared: list[StoredEvent], base: int, expected: ExpectedVersion
    ) -> tuple[list[Item], AppendResult]:
        """The items to write after ``base`` (checked, nothing written yet)."""
        head = self.heads.get(stream)
        if head is not None and recorded_head(head).version > base:
            # The stream's tail is gone. DynamoDB's head condition (heads only move forward) fails
            # the same way: a conflict at a given version; an "any" append retries until it times out.
            if expected == ANY:
                raise StreamContended(stream, 0.0, 1)
            raise VersionConflict(stream, expected, base)
        prev_hash = GENESIS_HASH if base == 0 else self.items[stream][base]["hash"]["S"]
        return link(stream, prepared, base, prev_hash), linked_result(stream, prepared, base)

    def _write(self, stream: str, items: list[Item], result: AppendResult) -> None:
        events = self.items.setdefault(stream, {})
        for item in items:
            events[int(item["version"]["N"])] = item
        self.heads[stream] = head_of(result, items)

    def _version(self, stream: str) -> int:
        return max(self.items.get(stream, {}), default=0)

    # ----------------------------------------------------------------- reads

    def stream_version(self, stream: str) -> int:
        with self._lock:
            return self._version(stream)

    def recorded(self, key: str) -> AppendResult | None:
        with self._lock:
            guard = self.guards.get(key)
        return None if guard is None else guard_result(guard)

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        with self._lock:
            guard = self.guards.get(key)
        return None if guard is None else guard_results(guard)

    def read_items(self, stream: str, from_version: int = 1, to_version: int | None = None) -> Iterator[Item]:
        with self._lock:
            events = self.items.get(stream, {})
            found = [copy.deepcopy(events[v]) for v in sorted(events)
                     if v >= from_version and (to_version is None or v <= to_version)]
        return iter(found)

    def scan_pages(
        self,
        total_segments: int,
        segments: Sequence[int] | None = None,
        *,
        page_size: int | None = None,
        keys_only: bool = False,
    ) -> Iterator[ScanPage]:
        """Segments by a stable hash of the stream (a segment holds whole streams, as DynamoDB's
        do), each stream's items contiguous and in version order; every segment yields at least
        one page, perhaps empty, then ``None``."""
        if total_segments < 1:
            raise ValueError("segments must be >= 1")
        with self._lock:
            snapshot = {stream: [events[v] for v in sorted(events)] for stream, events in self.items.items()}
        for segment in range(total_segments) if segments is None else segments:
            items: list[Item] = []
            for stream in sorted(s for s in snapshot if _segment(s, total_segments) == segment):
                items.extend({"stream": i["stream"], "version": i["version"]} if keys_only else copy.deepcopy(i)
                             for i in snapshot[stream])
            size = page_size or max(len(items), 1)
            for start in range(0, max(len(items), 1), size):
                yield segment, items[start:start + size]
            yield segment, None

    # ----------------------------------------------------------------- audit

    def recorded_head(self, stream: str) -> RecordedHead | None:
        with self._lock:
            head = self.heads.get(stream)
        return None if head is None else recorded_head(head)

    def recorded_heads(self, segments: int = 4) -> dict[str, RecordedHead]:
        with self._lock:
            return {stream: recorded_head(head) for stream, head in self.heads.items()}

    def list_streams(self, category: str, limit: int = 50, token: str | None = None) -> MergedPage[StreamEntry]:
        """As DynamoDB's by-category index answers: each bucket's heads newest first, merged."""
        catalogue.check_category(category)
        with self._lock:
            heads = list(self.heads.values())

        def fetch(key: str, start: Key | None, count: int) -> tuple[list[Item], Key | None]:
            ordered = sorted((h for h in heads if h[stream_catalogue.CATALOGUE_ATTR]["S"] == key),
                             key=stream_catalogue.index_order, reverse=True)
            if start is not None:
                after = stream_catalogue.index_order(start)
                ordered = [h for h in ordered if stream_catalogue.index_order(h) < after]
            page = ordered[:count]
            return page, (stream_catalogue.position(page[-1]) if len(ordered) > count else None)

        merged = merge_page(fetch, stream_catalogue.category_keys(category), limit, token,
                            order=stream_catalogue.order, position=stream_catalogue.position)
        return MergedPage([stream_catalogue.entry(item) for item in merged.items], merged.next_token)


def _segment(stream: str, total: int) -> int:
    return int.from_bytes(hashlib.sha256(stream.encode("utf-8")).digest()[:4], "big") % total
