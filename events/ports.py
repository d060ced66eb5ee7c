"""The event log as a port: what the rest of the system asks of it, whatever stores it. Pure.

``events.store.EventStore`` keeps the log in DynamoDB; ``events.memory.InMemoryEventLog`` keeps it
in a dict for unit tests. Both run the same contract tests (``tests/contract/``), so a test on the
in-memory log says something about DynamoDB's.

The reads every log derives from its primitive ones (``read_items``, ``scan_pages``, the sealed
checkpoints and the heads earlier releases recorded) are written once, in ``DerivedReads``, so the
two logs decode, scan and verify alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from events import catalogue
from events.appending import ANY, AppendResult, ExpectedVersion, check_count, check_stored, prepare
from events.chain import ChainReport, Witness, merge_witnesses, verify_items, verify_log
from events.checkpoints import Checkpoint
from events.envelope import NewEvent, PlannedAppend, RecordedEvent, StoredEvent
from events.errors import InvalidExpectedVersion
from events.items import Item, from_item
from events.sharding import MergedPage
from events.stream_catalogue import StreamEntry

ScanPage = tuple[int, list[Item] | None]  # (segment, page); (segment, None) when the segment is done


class EventLog(Protocol):
    """Append-only, conditional, idempotent, hash-chained streams (DESIGN.md rules 1-4)."""

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion = ANY,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Events to one stream, all or none, after ``expected_version`` (a number, "no_stream" or
        "any"); a repeated ``idempotency_key`` gets the original answer, marked deduplicated."""
        ...

    def append_stored(
        self,
        stream: str,
        events: Sequence[StoredEvent],
        expected_version: ExpectedVersion = ANY,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Events exactly as another log stored them (an import)."""
        ...

    def append_streams(self, plans: Sequence[PlannedAppend], idempotency_key: str) -> list[AppendResult]:
        """Events to several streams at their heads, all or none, once per key."""
        ...

    def read_stream(self, stream: str, from_version: int = 1, to_version: int | None = None) -> list[RecordedEvent]:
        """One stream's events in version order (inclusive range), old types upcast."""
        ...

    def read_items(self, stream: str, from_version: int = 1, to_version: int | None = None) -> Iterator[Item]:
        """One stream's stored items in version order, as stored (for audits and rebuilds)."""
        ...

    def scan_pages(
        self,
        total_segments: int,
        segments: Sequence[int] | None = None,
        *,
        page_size: int | None = None,
        keys_only: bool = False,
    ) -> Iterator[ScanPage]:
        """The whole log split into ``total_segments`` parts that each hold whole streams, each
        stream's items contiguous and in version order; ``keys_only`` reads (stream, version)."""
        ...

    def scan_items(self, segments: int = 4, page_size: int | None = None) -> Iterator[Item]: ...

    def read_all(self, segments: int = 4) -> Iterator[RecordedEvent]: ...

    def stream_version(self, stream: str) -> int:
        """The stream's current version; 0 when it has no events."""
        ...

    def recorded(self, key: str) -> AppendResult | None:
        """What an idempotency key appended (its first stream's part); None if unknown."""
        ...

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        """What an idempotency key appended, stream by stream; None if unknown."""
        ...

    def list_streams(self, category: str, limit: int = 50, token: str | None = None) -> MergedPage[StreamEntry]:
        """The category's streams, newest created first, a page at a time (the stream catalogue:
        an index query per bucket, never a scan); ``token`` is the last page's."""
        ...

    def seal(self, checkpoints: Sequence[Checkpoint]) -> dict[str, Exception]:
        """Seal checkpoints (insert-only; one already there is success); the streams that failed."""
        ...

    def sealed_checkpoint(self, stream: str) -> Checkpoint | None:
        """The stream's highest sealed checkpoint."""
        ...

    def sealed_checkpoints(self, segments: int = 4) -> dict[str, Checkpoint]: ...

    def recorded_head(self, stream: str) -> Witness | None:
        """The head releases before checkpoints recorded with every append (no longer written)."""
        ...

    def recorded_heads(self, segments: int = 4) -> dict[str, Witness]: ...

    def verify_stream(self, stream: str, also: Sequence[Witness] = ()) -> ChainReport:
        """The stream's chain, checked against its checkpoint, its old head and ``also``."""
        ...

    def verify_log(self, segments: int = 4,
                   also: Mapping[str, Sequence[Witness]] | None = None) -> Iterator[ChainReport]:
        ...


class DerivedReads:
    """What every log derives from its primitives, written once: ``append`` and ``append_stored``
    (prepared and checked by ``events.appending``) from ``_append_prepared``; ``read_stream``,
    ``scan_items``, ``read_all`` and the audits from ``read_items``, ``scan_pages``, the sealed
    checkpoints and the heads earlier releases recorded. ``_saw_head`` lets a log remember a head
    it read (the DynamoDB store caches head hashes)."""

    _clock: Callable[[], datetime]

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion = ANY,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append events to one stream atomically; see DESIGN.md correctness rules 1-4."""
        prepared = prepare(stream, events, idempotency_key, self._clock())
        return self._append_prepared(stream, prepared, expected_version, idempotency_key)

    def append_stored(
        self,
        stream: str,
        events: Sequence[StoredEvent],
        expected_version: ExpectedVersion = ANY,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append events exactly as another log stored them (an import): id, stored type, data
        text, time, source, correlation and causation are kept byte for byte; only the versions
        and chain links are this log's. The data must still decode (upcasting old types) and
        each type must belong in the stream's category."""
        check_count(events, idempotency_key)
        for event in events:
            check_stored(stream, event)
        return self._append_prepared(stream, list(events), expected_version, idempotency_key)

    def _append_prepared(
        self, stream: str, prepared: list[StoredEvent], expected_version: ExpectedVersion, key: str | None
    ) -> AppendResult:
        raise NotImplementedError

    def read_items(self, stream: str, from_version: int = 1, to_version: int | None = None) -> Iterator[Item]:
        raise NotImplementedError

    def scan_pages(
        self,
        total_segments: int,
        segments: Sequence[int] | None = None,
        *,
        page_size: int | None = None,
        keys_only: bool = False,
    ) -> Iterator[ScanPage]:
        raise NotImplementedError

    def sealed_checkpoint(self, stream: str) -> Checkpoint | None:
        raise NotImplementedError

    def sealed_checkpoints(self, segments: int = 4) -> dict[str, Checkpoint]:
        raise NotImplementedError

    def recorded_head(self, stream: str) -> Witness | None:
        raise NotImplementedError

    def recorded_heads(self, segments: int = 4) -> dict[str, Witness]:
        raise NotImplementedError

    def _saw_head(self, stream: str, version: int, digest: str) -> None:
        """A stream's event at ``version`` has hash ``digest`` (events are immutable)."""

    def read_stream(self, stream: str, from_version: int = 1, to_version: int | None = None) -> list[RecordedEvent]:
        """One stream's events in version order, old versions upcast to the current models."""
        catalogue.stream_category(stream)
        if from_version < 1:
            raise InvalidExpectedVersion(f"from_version must be >= 1, got {from_version}")
        events = [from_item(item) for item in self.read_items(stream, from_version, to_version)]
        if events:
            self._saw_head(stream, events[-1].version, events[-1].hash)
        return events

    def scan_items(self, segments: int = 4, page_size: int | None = None) -> Iterator[Item]:
        """Every stored item; within a stream, items come in version order (streams interleave)."""
        for _, page in self.scan_pages(segments, page_size=page_size):
            if page is not None:
                yield from page

    def read_all(self, segments: int = 4) -> Iterator[RecordedEvent]:
        """Every event, each stream's in version order (streams interleave), for replay."""
        for item in self.scan_items(segments):
            yield from_item(item)

    def witnesses(self, stream: str) -> list[Witness]:
        """What the log's own records say ``stream`` reached: its highest sealed checkpoint and
        the head an earlier release recorded."""
        checkpoint, head = self.sealed_checkpoint(stream), self.recorded_head(stream)
        return [w for w in (checkpoint.witness() if checkpoint else None, head) if w is not None]

    def all_witnesses(self, segments: int = 4) -> dict[str, list[Witness]]:
        checkpoints = {s: [c.witness()] for s, c in self.sealed_checkpoints(segments).items()}
        return merge_witnesses(checkpoints, {s: [h] for s, h in self.recorded_heads(segments).items()})

    def verify_stream(self, stream: str, also: Sequence[Witness] = ()) -> ChainReport:
        """The stream's chain, checked against its witnesses and ``also`` (read first: an append
        meanwhile only makes the log longer than they say, never shorter)."""
        witnesses = [*self.witnesses(stream), *also]
        return verify_items(stream, self.read_items(stream), witnesses)

    def verify_log(self, segments: int = 4,
                   also: Mapping[str, Sequence[Witness]] | None = None) -> Iterator[ChainReport]:
        """A report per stream of the whole log, each checked against its witnesses and ``also``;
        streams with witnesses and no events left are reported as truncated."""
        witnesses = merge_witnesses(self.all_witnesses(segments), also or {})
        return verify_log(self.scan_items(segments), witnesses)
