"""The event log in memory: the ``EventLog`` port for unit tests, with the DynamoDB store's semantics.

Appends are prepared, checked, linked and guarded by the same functions as ``events.store``
(``events.appending``), so the items kept here are the ones DynamoDB would hold, hash for hash;
reads and audits are the same ``DerivedReads``. One lock makes every append one atomic step, as a
DynamoDB transaction is. The contract tests in ``tests/contract/`` hold both logs to one behaviour.

Where the engines must differ: there are no lost races here, so an "any" append never waits, and a
keyed append writes its guard and its events in one step. A guard whose plan was never written (a
DynamoDB writer that stopped between its two writes) can still be planted in ``guards``; it is
settled the same way as on DynamoDB (``events.appending``).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Literal

from events.appending import (
    ANY,
    IDEMPOTENCY_TTL,
    AppendResult,
    ExpectedVersion,
    GuardPlan,
    adopt,
    check_expected,
    check_plans,
    guard_item,
    guard_plans,
    guard_results,
    link,
    linked_result,
    moved,
    original,
    plan_at,
    plan_state,
    prepare,
    replan_refused,
    request_hash,
    streams_request_hash,
)
from events import catalogue, stream_catalogue
from events.chain import Witness
from events.checkpoints import Checkpoint, highest, legacy_head
from events.envelope import GENESIS_HASH, PlannedAppend, StoredEvent
from events.errors import VersionConflict
from events.items import Item
from events.ports import DerivedReads, ScanPage
from events.sharding import Key, MergedPage, merge_page
from events.stream_catalogue import StreamEntry


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class InMemoryEventLog(DerivedReads):
    """Streams of stored items, idempotency guards, sealed checkpoints and (from earlier releases)
    recorded heads, in dicts behind one lock.

    ``items``, ``guards``, ``checkpoints`` and ``heads`` are the tables themselves: a test may alter
    them to play an attacker (or an operator) changing the log behind the store's back, or a writer
    that stopped half way.
    """

    def __init__(
        self, *, clock: Callable[[], datetime] = _utcnow, idempotency_ttl: timedelta = IDEMPOTENCY_TTL
    ) -> None:
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._lock = threading.RLock()
        self.items: dict[str, dict[int, Item]] = {}  # stream -> version -> item
        self.guards: dict[str, Item] = {}  # idempotency key -> guard item
        self.checkpoints: dict[tuple[str, int], Checkpoint] = {}  # (stream, version) -> sealed checkpoint
        self.heads: dict[str, Item] = {}  # stream -> head item an earlier release recorded

    # ----------------------------------------------------------------- append

    def _append_prepared(
        self, stream: str, prepared: list[StoredEvent], expected_version: ExpectedVersion, key: str | None
    ) -> AppendResult:
        expected = check_expected(expected_version)
        with self._lock:
            if key is not None:
                return self._append_keyed([(stream, prepared)], expected, expected_version, key,
                                          request_hash(stream, prepared))[0]
            base = self._checked_base(stream, expected, expected_version)
            self._write(self._linked(stream, prepared, base))
            return linked_result(stream, prepared, base)

    def append_streams(self, plans: Sequence[PlannedAppend], idempotency_key: str) -> list[AppendResult]:
        check_plans(plans, idempotency_key)
        prepared = [(plan.stream, prepare(plan.stream, plan.events, None, self._clock())) for plan in plans]
        with self._lock:
            return self._append_keyed(prepared, ANY, ANY, idempotency_key, streams_request_hash(prepared))

    def _append_keyed(
        self, parts: list[tuple[str, list[StoredEvent]]], expected: int | Literal["any"],
        expected_version: ExpectedVersion, key: str, digest: str,
    ) -> list[AppendResult]:
        """The guard protocol of ``events.appending`` in one step: a new key is planned, guarded
        and written at once; a guard found is settled by the state of its plan."""
        guard = self.guards.get(key)
        lost: list[GuardPlan] | None = None
        if guard is not None:
            original(key, digest, guard)  # raises if the key named another request
            plans = guard_plans(guard)
            if plans is None:
                return guard_results(guard)
            state = plan_state(plans, [self.items.get(p.stream, {}).get(p.first_version) for p in plans])
            if state == "realized":
                return [plan.result(deduplicated=True) for plan in plans]
            if state == "pending":
                return self._write_plans(parts, plans)
            if replan_refused(plans, expected):
                raise VersionConflict(plans[0].stream, expected_version, self._version(plans[0].stream))
            lost = plans
        fresh = [plan_at(stream, events, self._checked_base(stream, expected, expected_version))
                 for stream, events in parts]
        planned = fresh if lost is None else moved(lost, fresh)  # a lost plan moves to the heads
        self.guards[key] = guard_item(key, digest, planned, self._clock(), self._idempotency_ttl)
        return self._write_plans(parts, planned)

    def _write_plans(self, parts: list[tuple[str, list[StoredEvent]]], plans: list[GuardPlan]) -> list[AppendResult]:
        linked = []
        for (stream, events), plan in zip(parts, plans, strict=True):
            base = plan.first_version - 1
            if base != self._version(stream):  # only a planted plan can point past the head
                raise VersionConflict(stream, base, self._version(stream))
            linked.append(self._linked(stream, adopt(events, plan), base))
        for items in linked:
            self._write(items)
        return [plan.result(deduplicated=False) for plan in plans]

    def _checked_base(self, stream: str, expected: int | Literal["any"], expected_version: ExpectedVersion) -> int:
        current = self._version(stream)
        if expected != ANY and expected != current:
            raise VersionConflict(stream, expected_version, current)
        return current

    def _linked(self, stream: str, prepared: list[StoredEvent], base: int) -> list[Item]:
        """The items to write after ``base`` (checked, nothing written yet)."""
        prev_hash = GENESIS_HASH if base == 0 else self.items[stream][base]["hash"]["S"]
        return link(stream, prepared, base, prev_hash)

    def _write(self, items: list[Item]) -> None:
        for item in items:
            self.items.setdefault(item["stream"]["S"], {})[int(item["version"]["N"])] = item

    def _version(self, stream: str) -> int:
        return max(self.items.get(stream, {}), default=0)

    # ----------------------------------------------------------------- reads

    def stream_version(self, stream: str) -> int:
        with self._lock:
            return self._version(stream)

    def recorded(self, key: str) -> AppendResult | None:
        results = self.recorded_streams(key)
        return None if results is None else results[0]

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        with self._lock:
            guard = self.guards.get(key)
            if guard is None:
                return None
            plans = guard_plans(guard)
            firsts = [] if plans is None else [self.items.get(p.stream, {}).get(p.first_version) for p in plans]
        if plans is not None and plan_state(plans, firsts) != "realized":
            return None
        return guard_results(guard)

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

    def list_streams(self, category: str, limit: int = 50, token: str | None = None) -> MergedPage[StreamEntry]:
        """As DynamoDB's by-category index answers: each bucket's first events newest first, merged."""
        catalogue.check_category(category)
        attr = stream_catalogue.CATALOGUE_ATTR
        with self._lock:
            firsts = [events[1] for events in self.items.values() if 1 in events and attr in events[1]]

        def fetch(key: str, start: Key | None, count: int) -> tuple[list[Item], Key | None]:
            ordered = sorted((i for i in firsts if i[attr]["S"] == key), key=stream_catalogue.index_order,
                             reverse=True)
            if start is not None:
                after = stream_catalogue.index_order(start)
                ordered = [i for i in ordered if stream_catalogue.index_order(i) < after]
            page = ordered[:count]
            return page, (stream_catalogue.position(page[-1]) if len(ordered) > count else None)

        merged = merge_page(fetch, stream_catalogue.category_keys(category), limit, token,
                            order=stream_catalogue.order, position=stream_catalogue.position)
        return MergedPage([stream_catalogue.entry(item) for item in merged.items], merged.next_token)

    # ----------------------------------------------------------------- checkpoints and audit

    def seal(self, checkpoints: Sequence[Checkpoint]) -> dict[str, Exception]:
        with self._lock:
            for checkpoint in checkpoints:
                self.checkpoints.setdefault((checkpoint.stream, checkpoint.version), checkpoint)
        return {}

    def sealed_checkpoint(self, stream: str) -> Checkpoint | None:
        with self._lock:
            return highest(c for (s, _), c in self.checkpoints.items() if s == stream).get(stream)

    def sealed_checkpoints(self, segments: int = 4) -> dict[str, Checkpoint]:
        with self._lock:
            return highest(self.checkpoints.values())

    def recorded_head(self, stream: str) -> Witness | None:
        with self._lock:
            head = self.heads.get(stream)
        return None if head is None else legacy_head(head)

    def recorded_heads(self, segments: int = 4) -> dict[str, Witness]:
        with self._lock:
            return {stream: legacy_head(head) for stream, head in self.heads.items()}


def _segment(stream: str, total: int) -> int:
    return int.from_bytes(hashlib.sha256(stream.encode("utf-8")).digest()[:4], "big") % total
