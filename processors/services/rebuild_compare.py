"""Prove rebuilt view tables equal to the live ones while traffic continues, and catch them up.

The live projector applies each stream's events some batching window after they are appended, so
at any moment the live and the rebuilt side stand at different versions of the busiest streams.
Comparing whole tables as they stand then reports ``live at v6, rebuilt at v7`` forever. Instead
(``projections.comparison``): every stream is compared at a *common* version. Where the live side
is ahead, the rebuilt side is caught up to exactly that version, through the live projector's own
batch code (``BatchProjector``) pointed at the new tables; where the rebuilt side is ahead, the live
projector is given a bounded time to pass it. A row is reported different only when both sides
stand at the same version and differ; streams still unsettled when the bound passes are compared
as they stand, with both versions shown.

Used by the local rebuild (``processors.operations.rebuild``) and by the state machine's compare
step on AWS, so both prove the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from events.errors import DynafoldError
from events.items import from_item
from events.scan import parallel_scan
from events.ports import EventLog
from projections.batch import BatchProjector, Entry
from projections.comparison import (
    Comparison,
    FamilyDigests,
    RowDigest,
    RowKey,
    TableRule,
    compare_settled,
    digest_rows,
    only_streams,
    stream_versions,
    unsettled_streams,
)
from projections.view import Row, View, stream_key
from projections.view_store import ViewStore
from projections.view_store import from_item as row_from_item

_CATCH_UP_BATCH = 100  # the projector's BatchSize in template.yaml


@dataclass
class Settled:
    comparison: Comparison
    caught_up: int = 0  # events applied to the rebuilt side
    waited_for_live: int = 0  # streams the live projector had to pass
    failed_streams: list[str] = field(default_factory=list)


class RebuildComparer:
    def __init__(self, client: Any, store: EventLog, views: Sequence[View[Any]], live: Mapping[str, str],
                 targets: Mapping[str, str], rules: Mapping[str, TableRule], *, segments: int = 4,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 now_epoch: Callable[[], int] = lambda: int(time.time())) -> None:
        self._client = client
        self._store = store
        self._views = list(views)
        self._live = live
        self._targets = targets
        self._rules = rules
        self._segments = segments
        self._clock = clock
        self._sleep = sleep
        self._now_epoch = now_epoch

    # ------------------------------------------------------------------ compare

    def compare(self, settle_seconds: float, poll_seconds: float = 0.5) -> Settled:
        """Compare every stream at a common version, waiting at most ``settle_seconds`` for them to settle."""
        now = self._now_epoch()
        live = self._scan_digests(self._live, now)
        rebuilt = self._scan_digests(self._targets, now)
        unsettled = unsettled_streams(live, rebuilt)
        settled = Settled(Comparison())
        compare_settled(live, rebuilt, set(unsettled), settled.comparison)
        if settle_seconds <= 0:  # as the tables stand: no catch-up, no waiting
            apart = set(unsettled)
            compare_settled(only_streams(live, apart), only_streams(rebuilt, apart), set(), settled.comparison)
            return settled
        deadline = self._clock() + settle_seconds
        waited: set[str] = set()
        while unsettled:
            streams = set(unsettled)
            live = self._stream_digests(self._live, streams, now)  # the live side first: the version to reach
            rebuilt = self._stream_digests(self._targets, streams, now)
            live_at, rebuilt_at = stream_versions(live), stream_versions(rebuilt)
            behind = {s: (rebuilt_at.get(s, 0), live_at.get(s, 0)) for s in streams
                      if live_at.get(s, 0) > rebuilt_at.get(s, 0)}
            if behind:
                settled.caught_up += self.catch_up_streams(behind, settled.failed_streams)
                rebuilt = self._merge(rebuilt, self._stream_digests(self._targets, set(behind), now), set(behind))
            unsettled = unsettled_streams(live, rebuilt)
            waited.update(s for s, (live_v, rebuilt_v) in unsettled.items() if rebuilt_v > live_v)
            now_settled = streams - set(unsettled)
            last_turn = self._clock() >= deadline
            if last_turn:  # the bound passed: what is still apart is compared as it stands
                now_settled = streams
            compare_settled(only_streams(live, now_settled), only_streams(rebuilt, now_settled), set(),
                            settled.comparison)
            if last_turn:
                break
            if unsettled:
                self._sleep(poll_seconds)
        settled.waited_for_live = len(waited)
        return settled

    # ------------------------------------------------------------------ catch up

    def catch_up_streams(self, ranges: Mapping[str, tuple[int, int]], failures: list[str]) -> int:
        """Apply versions (have, to] of each stream to the rebuilt side; returns events applied."""
        entries: list[Entry] = []
        for stream, (have, to) in ranges.items():
            for item in self._store.read_items(stream, have + 1, to):
                try:
                    entries.append(Entry(str(len(entries)), stream, from_item(item)))
                except (DynafoldError, ValueError) as error:
                    failures.append(f"{stream}: {type(error).__name__}: {error}")
                    break
        if not entries:
            return 0
        projector = BatchProjector(ViewStore(self._client, self._targets), self._store.read_stream, self._views,
                                   max_workers=4)
        applied = 0
        for first in range(0, len(entries), _CATCH_UP_BATCH):
            outcome = projector.project(entries[first:first + _CATCH_UP_BATCH])
            applied += sum(outcome.applied.values())
            failures.extend(f"{s.stream}: {s.failure}" for s in outcome.streams if s.failure)
        return applied

    # ------------------------------------------------------------------ reads

    def _scan_digests(self, tables: Mapping[str, str], now: int) -> dict[str, dict[RowKey, RowDigest]]:
        digests = {}
        for family, rule in self._rules.items():
            pages = parallel_scan(self._client, {"TableName": tables[family]}, self._segments)
            rows = (row_from_item(item) for _, page in pages if page for item in page)
            digests[family] = digest_rows(rows, rule, now)
        return digests

    def _stream_digests(self, tables: Mapping[str, str], streams: Iterable[str],
                        now: int) -> dict[str, dict[RowKey, RowDigest]]:
        """The rows of just these streams, by key (a strongly consistent query per stream and family)."""
        digests: dict[str, dict[RowKey, RowDigest]] = {}
        for family, rule in self._rules.items():
            rows: list[Row] = []
            for stream in streams:
                if stream.split(":", 1)[0] != rule.category:
                    continue
                request: dict[str, Any] = {
                    "TableName": tables[family], "KeyConditionExpression": "#k = :k", "ConsistentRead": True,
                    "ExpressionAttributeNames": {"#k": rule.key_attr},
                    "ExpressionAttributeValues": {":k": {"S": stream_key(stream)}}}
                while True:
                    page = self._client.query(**request)
                    rows.extend(row_from_item(item) for item in page.get("Items", ()))
                    if "LastEvaluatedKey" not in page:
                        break
                    request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            digests[family] = digest_rows(rows, rule, now)
        return digests

    @staticmethod
    def _merge(digests: FamilyDigests, fresh: FamilyDigests, streams: set[str]) -> dict[str, dict[RowKey, RowDigest]]:
        """``digests`` with the rows of ``streams`` replaced by ``fresh`` ones (rows may have gone)."""
        return {family: {**{k: d for k, d in rows.items() if d.stream not in streams}, **fresh.get(family, {})}
                for family, rows in digests.items()}


class VersionsWriter(Protocol):
    def write(self, changes: Mapping[str, str]) -> dict[str, str]: ...


class CompareStep:
    """The state machine's compare step over a JSON input (see template.yaml RebuildStateMachine):
    views, live and target tables (family -> table), table rules, settle seconds, switch."""

    def __init__(self, client: Any, store: EventLog, active: Callable[[], Mapping[str, str]],
                 versions: Callable[[], VersionsWriter]) -> None:
        self._client = client
        self._store = store
        self._active = active
        self._versions = versions

    def run(self, event: Mapping[str, Any], remaining_ms: int | None = None) -> dict[str, Any]:
        from processors.services.rebuild_segment import LAMBDA_SAFETY_SECONDS, active_overlap, views_named

        targets: dict[str, str] = dict(event["targets"])
        live = {family: self._active()[family] for family in targets}
        overlap = active_overlap(targets, live)
        if overlap:
            raise ValueError(f"refusing to compare into active tables {overlap}")
        views = list(views_named(event["views"]).values())
        rules = {family: TableRule(**rule) for family, rule in event["rules"].items()}
        settle = float(event.get("settle_seconds", 60.0))
        if remaining_ms is not None:  # half the time left for each of the (at most) two comparisons
            settle = max(0.0, min(settle, (remaining_ms / 1000.0 - LAMBDA_SAFETY_SECONDS) / 2 - 30.0))
        comparer = RebuildComparer(self._client, self._store, views, live, targets, rules,
                                   segments=int(event.get("total_segments", 4)))
        settled = comparer.compare(settle)
        comparison = settled.comparison
        switched = None
        if event.get("switch") and comparison.equal:
            switched = self._versions().write({family: table.rsplit("-", 1)[1] for family, table in targets.items()})
            settled.caught_up += comparer.compare(settle).caught_up
        return {"equal": comparison.equal, "rows_compared": comparison.rows, "caught_up": settled.caught_up,
                "differences": [str(d) for d in comparison.differences[:100]],
                "difference_count": len(comparison.differences), "failed_streams": settled.failed_streams[:100],
                "switched": switched}
