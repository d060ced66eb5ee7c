"""Fold one delivered batch of events into the views: exactly-once effect on at-least-once delivery.

Per stream in the batch: load its rows once, skip events at or below their version (duplicates,
redeliveries), fill a version gap by reading the missing events from the log, fold, and write
once, conditionally on the version read. Streams are independent and written in parallel.
A stream that fails is reported from its first unapplied record, so nothing later of that
stream is applied out of order.

The live projector (the one reading the event table's stream) also seals, per stream of the
batch, the highest version its records inserted (``events.checkpoints``): alongside the writes,
off the append path; a stream whose seal fails is retried like one whose rows failed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from events.checkpoints import Checkpoint, to_seal
from events.envelope import RecordedEvent
from projections.view import View, stream_key
from projections.ports import PARTIQL_BATCH, Loaded, PendingSave, StaleView, ViewRows

ReadMissing = Callable[[str, int, int], list[RecordedEvent]]  # (stream, from, to) inclusive
Seal = Callable[[Sequence[Checkpoint]], Mapping[str, Exception]]  # -> the streams whose seal failed
_STALE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Entry:
    """One delivered record: its position, its stream, and the decoded event (None if undecodable)."""

    sequence_number: str
    stream: str
    event: RecordedEvent | None
    error: str | None = None
    inserted: bool = False  # an INSERT record of the table's stream: what an append wrote (only those are sealed)


@dataclass
class StreamResult:
    stream: str
    applied: Counter[tuple[str, str]] = field(default_factory=Counter)  # (view, type) -> events
    live: list[RecordedEvent] = field(default_factory=list)  # delivered events applied now
    duplicates: int = 0
    gap_events: int = 0
    measures: Counter[str] = field(default_factory=Counter)  # the views' domain counts (View.measures)
    rows_written: int = 0
    failed_from: str | None = None  # sequence number of the first record not applied
    failure: str | None = None


@dataclass
class BatchOutcome:
    streams: list[StreamResult]

    @property
    def failed_sequence_numbers(self) -> list[str]:
        return [s.failed_from for s in self.streams if s.failed_from is not None]

    def total(self, attribute: str) -> int:
        return sum(getattr(s, attribute) for s in self.streams)

    @property
    def measures(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for s in self.streams:
            counts.update(s.measures)
        return counts

    @property
    def applied(self) -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        for s in self.streams:
            counts.update(s.applied)
        return counts


class BatchProjector:
    def __init__(
        self,
        store: ViewRows,
        read_missing: ReadMissing,
        views: Sequence[View[Any]],
        *,
        seal: Seal | None = None,
        max_workers: int = 8,
    ) -> None:
        self._store = store
        self._read_missing = read_missing
        self._seal = seal  # only the projector of the table's stream seals (not a catch-up from the log)
        self._views: Mapping[str, View[Any]] = {view.category: view for view in views}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="projector")

    def project(self, entries: Sequence[Entry]) -> BatchOutcome:
        """Fold every stream of the batch, then write: single rows of many streams in batched
        conditional statements, multi-item changes in shared transactions; a stream whose rows
        moved on meanwhile is reloaded and folded again on its own."""
        by_stream: dict[str, list[Entry]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry)
        sealed = self._pool.submit(self._sealed, entries) if self._seal is not None else None
        prefetched = self._prefetch(by_stream)
        work = [(stream, group, prefetched.get(stream)) for stream, group in by_stream.items()]
        folded = list(self._map(lambda item: self._fold_stream(*item), work))
        pending = {f.save.stream: f for f in folded if f.save is not None}
        batchable = [f.save for f in pending.values() if self._store.batchable(f.save)]
        if len(batchable) < 2:
            batchable = []
        batched = {save.stream for save in batchable}
        grouped = [f.save for stream, f in pending.items() if stream not in batched]
        # Requests in parallel: a statement batch per 25 single rows, one shared transaction per
        # group of multi-item changes.
        chunks: list[Callable[[], dict[str, int | Exception]]] = [
            partial(self._store.save_batched, batchable[i:i + PARTIQL_BATCH])
            for i in range(0, len(batchable), PARTIQL_BATCH)]
        if grouped:
            chunks.append(lambda: self._store.save_grouped(grouped))
        outcomes: dict[str, int | Exception] = {}
        for part in self._map(lambda write: write(), chunks):
            outcomes.update(part)
        results = [self._settle(f, outcomes.get(f.result.stream)) for f in folded]
        for result in results:
            refused = sealed.result().get(result.stream) if sealed is not None else None
            if refused is not None and result.failed_from is None:
                _failed(result, by_stream[result.stream][0], f"seal: {type(refused).__name__}: {refused}")
        return BatchOutcome(results)

    def _sealed(self, entries: Sequence[Entry]) -> Mapping[str, Exception]:
        """Seal each stream's highest inserted version; the streams whose seal failed."""
        checkpoints = to_seal(e.event for e in entries if e.event is not None and e.inserted)
        if self._seal is None or not checkpoints:
            return {}
        try:
            return self._seal(checkpoints)
        except Exception as error:  # noqa: BLE001 - every stream of the batch is retried
            return {c.stream: error for c in checkpoints}

    def _map(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return [function(item) for item in items] if len(items) <= 1 else list(self._pool.map(function, items))

    def _settle(self, folded: "_Folded", outcome: int | Exception | None) -> StreamResult:
        result = folded.result
        if isinstance(outcome, int):
            result.rows_written = outcome
            return result
        if folded.save is None:  # nothing to write, so no outcome
            result.rows_written = 0
            return result
        if isinstance(outcome, StaleView):  # someone else moved the rows on: the careful path
            return self._project_stream(result.stream, folded.entries)
        return _failed(result, folded.entries[0], f"{type(outcome).__name__}: {outcome}")

    def _prefetch(self, by_stream: Mapping[str, list[Entry]]) -> dict[str, Loaded[Any]]:
        """Rows of every stream in the batch, read in bulk per view (a failed read just means
        each stream loads its own rows)."""
        keys_by_view: dict[str, list[str]] = {}
        for stream in by_stream:
            view = self._views.get(stream.split(":", 1)[0])
            if view is not None and view.sort_attr is None:
                keys_by_view.setdefault(view.category, []).append(stream)
        prefetched: dict[str, Loaded[Any]] = {}
        for category, streams in keys_by_view.items():
            view = self._views[category]
            try:
                loaded = self._store.load_many(view, [stream_key(s) for s in streams])
            except Exception:  # noqa: BLE001, S112 - per-stream loads below will surface a real problem
                continue
            prefetched.update({s: loaded[stream_key(s)] for s in streams})
        return prefetched

    def _fold_stream(self, stream: str, entries: list[Entry], loaded: Loaded[Any] | None) -> "_Folded":
        """Load (unless prefetched) and fold one stream's records; nothing is written yet."""
        result = StreamResult(stream)
        usable = _usable(entries, result)
        view = self._views.get(stream.split(":", 1)[0])
        if view is None or not usable:
            return _Folded(result, usable, None)
        try:
            return _Folded(result, usable, self._fold(view, stream, usable, result, loaded))
        except Exception as error:  # noqa: BLE001 - reported per stream, the batch goes on
            return _Folded(_failed(result, usable[0], f"{type(error).__name__}: {error}"), usable, None)

    def _project_stream(self, stream: str, entries: list[Entry]) -> StreamResult:
        """One stream on its own, reloading while concurrent writers keep moving its rows."""
        result = StreamResult(stream)
        usable = _usable(entries, result)
        view = self._views.get(stream.split(":", 1)[0])
        if view is None or not usable:
            return result
        for _ in range(_STALE_RETRIES):
            try:
                save = self._fold(view, stream, usable, result, None)
                if save is not None:
                    result.rows_written = self._store.save(view, stream, save.key, save.loaded, save.state,
                                                           save.version)
                return result
            except StaleView:
                continue  # reload: the version guard skips whatever the other writer applied
            except Exception as error:  # noqa: BLE001 - reported per stream, the batch goes on
                return _failed(result, usable[0], f"{type(error).__name__}: {error}")
        return _failed(result, usable[0], "rows kept moving under concurrent writers")

    def _fold(
        self, view: View[Any], stream: str, entries: list[Entry], result: StreamResult, loaded: Loaded[Any] | None
    ) -> PendingSave[Any] | None:
        """Fold the records onto the loaded rows; the write it needs, or None when all were duplicates."""
        key = stream_key(stream)
        if loaded is None:
            loaded = self._store.load(view, key)
        state, version = loaded.state, loaded.version
        if loaded.unfinished:  # an earlier change stopped part way: refold what the head committed
            version = loaded.stored_version
            committed = self._read_missing(stream, 1, version) if version else []
            if [e.version for e in committed] != list(range(1, version + 1)):
                raise LookupError(f"{stream}: versions 1..{version} not in the log yet")
            state = view.fold(key, committed, state)  # not counted as applied: done before, in effect
        applied: Counter[tuple[str, str]] = Counter()
        measures: Counter[str] = Counter()
        live, duplicates, gap_events = [], 0, 0

        def step(state: Any, event: RecordedEvent) -> Any:
            after = view.apply(state, event)
            applied[(view.name, event.type)] += 1
            measures.update(view.measures(state, after))  # per event: a batch may open and close one
            return after

        for entry in entries:
            event = entry.event
            if event is None:  # _usable() cuts the batch before the first undecodable record
                raise ValueError(f"{stream}: record {entry.sequence_number} reached the fold undecoded")
            if event.version <= version:
                duplicates += 1
                continue
            if event.version > version + 1:
                missing = self._read_missing(stream, version + 1, event.version - 1)
                if [e.version for e in missing] != list(range(version + 1, event.version)):
                    raise LookupError(f"{stream}: versions {version + 1}..{event.version - 1} not in the log yet")
                for earlier in missing:
                    state = step(state, earlier)
                gap_events += len(missing)
            state = step(state, event)
            live.append(event)
            version = event.version
        result.applied, result.live = applied, live
        result.duplicates, result.gap_events = duplicates, gap_events
        result.measures = measures
        if version > loaded.version:  # (an unfinished change is always rewritten: its rows are a mix)
            return PendingSave(view, stream, key, loaded, state, version)
        return None


@dataclass
class _Folded:
    result: StreamResult
    entries: list[Entry]  # the usable records (before any poison one)
    save: PendingSave[Any] | None  # the write still to make


def _usable(entries: list[Entry], result: StreamResult) -> list[Entry]:
    """The records before the first undecodable one, which (with all that follow) is held back."""
    for index, entry in enumerate(entries):
        if entry.event is None:
            result.failed_from, result.failure = entry.sequence_number, entry.error or "undecodable record"
            return entries[:index]
    return entries


def _failed(result: StreamResult, first: Entry, reason: str) -> StreamResult:
    result.failed_from, result.failure = first.sequence_number, reason
    result.applied, result.live, result.rows_written, result.measures = Counter(), [], 0, Counter()
    return result


def lag_ms(event: RecordedEvent, now: datetime) -> float:
    return max(0.0, (now - event.time).total_seconds() * 1000.0)
