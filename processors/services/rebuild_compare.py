"""Prove rebuilt view tables equal to the live ones while traffic continues, and catch them up.

The live projector applies each stream's events some batching window after they are appended, so
at any moment the live and the rebuilt side stand at different versions of the busiest streams.
Comparing whole tables as they stand then reports ``live at v6, rebuilt at v7`` forever. Instead
(``projections.rebuild.comparison``): every stream is compared at a *common* version. Where the live side
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
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from events.errors import DynafoldError
from events.items import from_item
from events.sealing import reveal_of
from events.scan import scan_segment
from events.ports import EventLog
from projections.batch import BatchProjector, Entry
from projections.rebuild.comparison import (
    Comparison,
    FamilyDigests,
    RowDigest,
    RowKey,
    TableRule,
    Sides,
    behind_streams,
    by_stream,
    compare_settled,
    digest_rows,
    owned_rows,
    same_rows,
    whole_version,
    stream_versions,
    unsettled_streams,
)
from projections.view import Row, View, stream_key
from projections.view_store import ViewStore
from projections.view_store import from_item as row_from_item

_CATCH_UP_BATCH = 100  # the projector's BatchSize in template.yaml
_QUERY_THREADS = 16  # per-stream queries in flight at once: each is a network round trip
# BatchGetItem takes at most 100 keys; what it leaves unprocessed (throttling) is asked for again.
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
_BATCH_GET_KEYS, _BATCH_GET_ATTEMPTS = 100, 10


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

    def compare(self, settle_seconds: float, poll_seconds: float = 0.5,
                segments: Sequence[int] | None = None) -> Settled:
        """Compare the rows of the given scan segments (all by default) at a common version per
        stream, waiting at most ``settle_seconds`` for the streams that stand apart to settle.

        Each family's table is scanned segment by segment, both sides alike (the rows of a stream in
        one table share a partition key, so one segment holds them all). A stream whose rows are
        identical on both sides is done; any other is *suspect* and compared again with strongly
        consistent queries of just its rows, at a common version (``_settle``). A suspect belongs to
        the segment that holds its live rows or, when it has none, to the one that holds its rebuilt
        rows: the segments of one comparison, run in one process or in many Lambdas, compare every
        row once, whether or not the two tables place a key in the same segment."""
        now = self._now_epoch()
        settled = Settled(Comparison())
        seen = self._suspects(segments, now, settled.comparison)
        if settle_seconds <= 0:  # as the tables stand: what the scans saw is the answer
            self._as_they_stand(seen, now, settled.comparison)
        elif any(seen.values()):
            self._settle({family: set(streams) for family, streams in seen.items()}, settle_seconds, poll_seconds,
                         now, settled)
        return settled

    def _as_they_stand(self, seen: Mapping[str, Mapping[str, Sides]], now: int, comparison: Comparison) -> None:
        """Compare the suspects' rows as the scans read them; a side the segment did not show (its
        rows may sit in another segment of that table) is read with a query."""
        for family, streams in seen.items():
            rule = self._rules[family]
            tables = (self._live[family], self._targets[family])
            found = [self._query_many(table, rule, [s for s, sides in streams.items() if sides[index] is None], now)
                     for index, table in enumerate(tables)]
            for stream, sides in streams.items():
                live_rows, rebuilt_rows = (rows if rows is not None else digest_rows(found[index][stream], rule, now)
                                           for index, rows in enumerate(sides))
                compare_settled({family: live_rows}, {family: rebuilt_rows}, set(), comparison)

    def catch_up_segments(self, segments: Sequence[int] | None = None) -> Settled:
        """Once, without waiting or a verdict: apply to the rebuilt side what the live side has
        applied beyond it, in the given segments. After a switch, the old tables get what projectors
        still holding the old versions applied, and this carries it over."""
        now = self._now_epoch()
        settled = Settled(Comparison())
        seen = self._suspects(segments, now, Comparison())
        pending: set[str] = set().union(*(set(streams) for streams in seen.values()))
        if pending:
            live_at = stream_versions(self._stream_digests(self._live, pending, now))
            rebuilt_at = stream_versions(self._stream_digests(self._targets, pending, now))
            behind = behind_streams(pending, live_at, rebuilt_at)
            if behind:
                settled.caught_up = self.catch_up_streams(behind, settled.failed_streams)
        return settled

    def _suspects(self, segments: Sequence[int] | None, now: int,
                  comparison: Comparison) -> dict[str, dict[str, Sides]]:
        """family -> stream -> (its live rows, its rebuilt rows) as the segment scans read them (None:
        not in this segment), for the streams of these segments that must be looked at again (owned here).

        The segment scans are strongly consistent, and a stream's rows in one table share a
        partition, so a stream seen on both sides of a segment is seen whole on both. It is decided
        here when its rows are identical (counted as compared), or when, in its view's own table,
        both sides stand at the same version (its head or single row's stamp, no row newer than
        it: a partition read across two pages while it changed is not) and differ: the differences
        are recorded. Anything else is a suspect."""
        suspects: dict[str, dict[str, Sides]] = {}
        own_tables = {view.table for view in self._views}  # carry the stream's version stamp
        for family, rule in self._rules.items():
            comparison.rows.setdefault(family, 0)
            mine = suspects.setdefault(family, {})
            for segment in range(self._segments) if segments is None else segments:
                live = by_stream(self._segment_digests(self._live[family], rule, segment, now))
                rebuilt = by_stream(self._segment_digests(self._targets[family], rule, segment, now))
                for stream, rows in live.items():
                    theirs = rebuilt.get(stream)
                    if theirs is not None and same_rows(rows, theirs):
                        comparison.rows[family] += len(rows)
                    elif (theirs is not None and family in own_tables
                          and whole_version(rows, rule) == whole_version(theirs, rule) is not None):
                        compare_settled({family: rows}, {family: theirs}, set(), comparison)
                    else:
                        mine[stream] = (rows, theirs)
                only_rebuilt = [stream for stream in rebuilt if stream not in live]
                for stream in self._without_live_rows(family, rule, only_rebuilt, now):
                    mine[stream] = ({}, rebuilt[stream])
        return suspects

    def _settle(self, suspects: Mapping[str, set[str]], settle_seconds: float, poll_seconds: float, now: int,
                settled: Settled) -> None:
        """Compare the suspects' rows at a common version per stream: where the live side is ahead,
        catch the rebuilt side up to exactly that version; where the rebuilt side is ahead, give the
        live projector until ``settle_seconds`` to pass it. Streams still apart then are compared as
        they stand (``settle_seconds`` <= 0: at once, without catching up)."""
        pending: set[str] = set().union(*suspects.values())
        deadline = self._clock() + max(0.0, settle_seconds)
        waited: set[str] = set()
        while pending:
            live = self._stream_digests(self._live, pending, now)  # the live side first: the version to reach
            rebuilt = self._stream_digests(self._targets, pending, now)
            live_at, rebuilt_at = stream_versions(live), stream_versions(rebuilt)
            behind = behind_streams(pending, live_at, rebuilt_at)
            if behind and settle_seconds > 0:
                settled.caught_up += self.catch_up_streams(behind, settled.failed_streams)
                rebuilt = self._merge(rebuilt, self._stream_digests(self._targets, set(behind), now), set(behind))
            apart = unsettled_streams(live, rebuilt)
            waited.update(s for s, (live_v, rebuilt_v) in apart.items() if rebuilt_v > live_v)
            last_turn = settle_seconds <= 0 or self._clock() >= deadline
            done = pending if last_turn else pending - set(apart)
            compare_settled(owned_rows(live, suspects, done), owned_rows(rebuilt, suspects, done), set(),
                            settled.comparison)
            pending -= done
            if pending:
                self._sleep(poll_seconds)
        settled.waited_for_live = len(waited)

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
                                   reveal=reveal_of(self._store))
        applied = 0
        for first in range(0, len(entries), _CATCH_UP_BATCH):
            outcome = projector.project(entries[first:first + _CATCH_UP_BATCH])
            applied += sum(outcome.applied.values())
            failures.extend(f"{s.stream}: {s.failure}" for s in outcome.streams if s.failure)
        return applied

    # ------------------------------------------------------------------ reads

    def _segment_digests(self, table: str, rule: TableRule, segment: int, now: int) -> dict[RowKey, RowDigest]:
        pages = scan_segment(self._client, {"TableName": table, "ConsistentRead": True}, segment, self._segments)
        return digest_rows((row_from_item(item) for page in pages for item in page), rule, now)

    def _without_live_rows(self, family: str, rule: TableRule, streams: Sequence[str], now: int) -> set[str]:
        """Those of ``streams`` (seen in a rebuilt segment only) that have no live row in ``family``:
        they belong to this segment. The others belong to the segment holding their live rows."""
        if rule.sort_attr is None:  # one row per stream: look its key up, a hundred at a time
            return set(streams) - self._single_rows_present(self._live[family], rule, streams, now)
        found = self._query_many(self._live[family], rule, streams, now)
        return {stream for stream in streams if not found[stream]}

    def _single_rows_present(self, table: str, rule: TableRule, streams: Sequence[str], now: int) -> set[str]:
        """Those of ``streams`` whose (unexpired) row is in a single-row table (BatchGetItem, consistent)."""
        by_key = {stream_key(stream): stream for stream in streams}
        names = {"#k": rule.key_attr, **({"#t": rule.ttl_attr} if rule.ttl_attr else {})}
        present: set[str] = set()
        keys = list(by_key)
        for first in range(0, len(keys), _BATCH_GET_KEYS):
            request: dict[str, Any] = {table: {
                "Keys": [{rule.key_attr: {"S": key}} for key in keys[first:first + _BATCH_GET_KEYS]],
                "ConsistentRead": True, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}}
            for attempt in range(_BATCH_GET_ATTEMPTS):
                answer = self._client.batch_get_item(RequestItems=request)
                for row in map(row_from_item, answer.get("Responses", {}).get(table, ())):
                    if not rule.expired(row, now):
                        present.add(by_key[str(row[rule.key_attr])])
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(min(1.0, 0.05 * 2 ** attempt))  # throttled: back off, then ask for the rest
            else:
                raise RuntimeError(f"{table}: keys still unprocessed after {_BATCH_GET_ATTEMPTS} attempts")
        return present

    def _stream_digests(self, tables: Mapping[str, str], streams: Iterable[str],
                        now: int) -> dict[str, dict[RowKey, RowDigest]]:
        """The rows of just these streams, by key (a strongly consistent query per stream and family)."""
        digests: dict[str, dict[RowKey, RowDigest]] = {}
        for family, rule in self._rules.items():
            mine = [stream for stream in streams if stream.split(":", 1)[0] == rule.category]
            found = self._query_many(tables[family], rule, mine, now)
            digests[family] = digest_rows((row for rows in found.values() for row in rows), rule, now)
        return digests

    def _query_many(self, table: str, rule: TableRule, streams: Sequence[str], now: int) -> dict[str, list[Row]]:
        """stream -> its rows in ``table``: one query each, run side by side (each waits on the network)."""
        if len(streams) <= 1:
            return {stream: self._query_rows(table, rule, stream, now) for stream in streams}
        with ThreadPoolExecutor(max_workers=min(_QUERY_THREADS, len(streams)), thread_name_prefix="compare") as pool:
            return dict(zip(streams, pool.map(lambda stream: self._query_rows(table, rule, stream, now), streams),
                            strict=True))

    def _query_rows(self, table: str, rule: TableRule, stream: str, now: int) -> list[Row]:
        """The unexpired rows of a stream's partition in one table, read strongly consistently."""
        request: dict[str, Any] = {
            "TableName": table, "KeyConditionExpression": "#k = :k", "ConsistentRead": True,
            "ExpressionAttributeNames": {"#k": rule.key_attr},
            "ExpressionAttributeValues": {":k": {"S": stream_key(stream)}}}
        rows: list[Row] = []
        while True:
            page = self._client.query(**request)
            rows.extend(row for row in map(row_from_item, page.get("Items", ())) if not rule.expired(row, now))
            if "LastEvaluatedKey" not in page:
                return rows
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _merge(digests: FamilyDigests, fresh: FamilyDigests, streams: set[str]) -> dict[str, dict[RowKey, RowDigest]]:
        """``digests`` with the rows of ``streams`` replaced by ``fresh`` ones (rows may have gone)."""
        return {family: {**{k: d for k, d in rows.items() if d.stream not in streams}, **fresh.get(family, {})}
                for family, rows in digests.items()}


class VersionsWriter(Protocol):
    def write(self, changes: Mapping[str, str]) -> dict[str, str]: ...


# A segment's answer travels inside the Distributed Map's result array to the verdict step, and
# Step Functions caps a state's input and output at 256 KiB: a segment says its counts and its first
# difference and failure only (each at most this long), which keeps MAX_AWS_SEGMENTS answers well
# inside the cap (tests/unit/test_rebuild_compare_step.py measures the largest answer).
# https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html#service-limits-task-executions
SHOWN_PER_SEGMENT = 120
MAX_AWS_SEGMENTS = 256


class CompareStep:
    """The state machine's comparison steps over a JSON input (statemachine/rebuild.asl.json):

    - ``compare``: one scan segment of every view table, at a common version per stream (the
      Distributed Map runs one per segment, so the proof scales with the fill);
    - ``verdict``: sums the segments' answers and, with ``switch`` and EQUAL, writes the new
      versions to the parameter every function reads;
    - ``catch_up``: after a switch (and the functions' version cache), one segment once more: what
      projectors still holding the old versions applied to the old tables is applied to the new.

    Every step names the live tables it started from (``live``); ``compare`` refuses to run when
    they are no longer the active ones, and no step writes into an active table."""

    def __init__(self, client: Any, store: EventLog, active: Callable[[], Mapping[str, str]],
                 versions: Callable[[], VersionsWriter]) -> None:
        self._client = client
        self._store = store
        self._active = active
        self._versions = versions

    def run(self, event: Mapping[str, Any], remaining_ms: int | None = None) -> dict[str, Any]:
        step = event.get("step")
        if step == "compare":
            return self._compare(event, remaining_ms)
        if step == "catch_up":
            return self._catch_up(event)
        if step == "verdict":
            return self._verdict(event)
        raise ValueError(f"unknown rebuild step {step!r} (compare, verdict or catch_up)")

    def _comparer(self, event: Mapping[str, Any], *, switched: bool) -> RebuildComparer:
        """Before the switch the live tables must be the active ones and the targets not; after it
        (``catch_up``), the other way round: no step writes into tables it does not fill."""
        from processors.services.rebuild_segment import active_overlap, views_named

        targets: dict[str, str] = dict(event["targets"])
        live: dict[str, str] = dict(event["live"])
        if set(live) != set(targets):
            raise ValueError(f"live {sorted(live)} and targets {sorted(targets)} name different families")
        active = self._active()
        now = {family: active[family] for family in targets}
        in_use = active_overlap(targets, now)
        if not switched and in_use:
            raise ValueError(f"refusing to write into active tables {in_use}")
        if not switched and now != live:
            raise ValueError(f"the active tables changed since the rebuild started: {live} -> {now}")
        if switched and now != targets:
            raise ValueError(f"catch_up runs after the switch, but the active tables are {now}, not {targets}")
        views = list(views_named(event["views"]).values())
        rules = {family: TableRule(**{**rule, "sharded": tuple(rule.get("sharded", ()))})
                 for family, rule in event["rules"].items()}
        return RebuildComparer(self._client, self._store, views, live, targets, rules,
                               segments=int(event["total_segments"]))

    def _compare(self, event: Mapping[str, Any], remaining_ms: int | None) -> dict[str, Any]:
        from processors.services.rebuild_segment import LAMBDA_SAFETY_SECONDS

        settle = float(event.get("settle_seconds", 60.0))
        if remaining_ms is not None:  # the scan of the segment comes first: leave it half the time
            settle = max(0.0, min(settle, (remaining_ms / 1000.0 - LAMBDA_SAFETY_SECONDS) / 2))
        segment = int(event["segment"])
        settled = self._comparer(event, switched=False).compare(settle, segments=[segment])
        differences = settled.comparison.differences
        return {"segment": segment, "rows": sum(settled.comparison.rows.values()),
                "rows_by_family": settled.comparison.rows, "differences": len(differences),
                "first": str(differences[0])[:SHOWN_PER_SEGMENT] if differences else None,
                "caught_up": settled.caught_up, "failed": len(settled.failed_streams),
                "first_failed": settled.failed_streams[0][:SHOWN_PER_SEGMENT] if settled.failed_streams else None}

    def _catch_up(self, event: Mapping[str, Any]) -> dict[str, Any]:
        segment = int(event["segment"])
        settled = self._comparer(event, switched=True).catch_up_segments([segment])
        return {"segment": segment, "caught_up": settled.caught_up, "failed": len(settled.failed_streams)}

    def _verdict(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The segments' answers summed; the switch when asked for and EQUAL."""
        answers: list[Mapping[str, Any]] = list(event["segments"])
        rows: dict[str, int] = {}
        for answer in answers:
            for family, count in (answer.get("rows_by_family") or {}).items():
                rows[family] = rows.get(family, 0) + int(count)
        difference_count = sum(int(a["differences"]) for a in answers)
        equal = difference_count == 0  # a stream that no longer decodes has its rows reported missing
        switched = None
        if event.get("switch") and equal:
            targets: dict[str, str] = dict(event["targets"])
            switched = self._versions().write({family: table.rsplit("-", 1)[1] for family, table in targets.items()})
        return {"equal": equal, "rows_compared": rows, "caught_up": sum(int(a["caught_up"]) for a in answers),
                "difference_count": difference_count,
                "differences": [a["first"] for a in answers if a.get("first")][:100],
                "failed_count": sum(int(a["failed"]) for a in answers),
                "failed_streams": [a["first_failed"] for a in answers if a.get("first_failed")][:100],
                "switched": switched}
