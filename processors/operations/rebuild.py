"""Rebuild views from the event log into fresh versioned tables, prove them equal, switch.

The shell around ``projections.replay`` (fold whole streams), ``projections.comparison`` (row
hashes) and ``projections.rebuild_plan`` (versions, estimate, progress):

1. fill ``<family>-v<N+1>`` for every family of the views from a parallel scan of the event
   table, segment by segment, recording finished segments so an interrupted run resumes;
2. catch up with events appended meanwhile, through the live projector's own batch code
   (``BatchProjector``) pointed at the new tables;
3. compare new and live tables row by row, retrying while differences look like one side lagging;
4. on request, switch the active versions, then catch up once more for what live processing
   wrote to the old tables while the switch took effect.

It reads the event *table*, never its DynamoDB stream, and never calls reactor code: a rebuild
raises no alerts and dispatches no deliveries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from events.errors import DynafoldError
from events.items import from_item
from events.store import EventStore
from processors.operations.progress import Progress
from processors.operations.tables import create_copy, list_table_names
from processors.operations.template import local_table_name, table_definitions
from projections.batch import BatchProjector, Entry
from projections.comparison import Comparison, TableRule, compare_family, digest_rows
from projections.rate_limit import RateLimiter
from projections.rebuild_plan import Estimate, LogStats, RebuildProgress, estimate, next_version
from projections.replay import replay
from projections.view import STREAM_ATTR, VERSION_ATTR, View
from projections.view_store import ViewStore
from projections.view_store import from_item as row_from_item
from projections.view_tables import BulkWriter, scan_items, table_stats

# A dry run's time estimate when nothing has been measured: DynamoDB Local on a small machine
# (see `make bench`); on AWS, on-demand tables go faster.
ASSUMED_EVENTS_PER_SECOND = 3000.0
_CATCH_UP_BATCH = 100  # the projector's BatchSize in template.yaml


class VersionsConfig(Protocol):
    def read(self) -> dict[str, str]: ...
    def write(self, changes: Mapping[str, str]) -> dict[str, str]: ...


@dataclass(frozen=True)
class RebuildOptions:
    segments: int = 4
    workers: int = 4  # segments folded at once
    writers_per_segment: int = 2
    max_write_rate: float | None = None
    compare_attempts: int = 3
    settle_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.segments <= 1000:
            raise DynafoldError(f"--segments must be 1..1000, got {self.segments}")
        if not 1 <= self.workers <= 64:
            raise DynafoldError(f"--workers must be 1..64, got {self.workers}")
        if self.max_write_rate is not None and self.max_write_rate <= 0:
            raise DynafoldError(f"--max-write-rate must be > 0, got {self.max_write_rate}")


@dataclass
class RebuildResult:
    progress: RebuildProgress
    resumed: bool
    caught_up: int = 0
    comparison: Comparison = field(default_factory=Comparison)
    switched: dict[str, str] | None = None
    seconds: float = 0.0  # the whole run
    fill_seconds: float = 0.0  # scanning, folding and writing the fresh tables


def version_of(table_name: str) -> str:
    return table_name.rsplit("-", 1)[1]


def template_base(family: str) -> str:
    """The template's table of a family (``inventory`` -> ``inventory-v1``), the definition copies get."""
    [base] = [name for name in table_definitions() if name.rsplit("-", 1)[0] == family
              and version_of(name).startswith("v")]
    return base


def table_rule(family: str) -> TableRule:
    definition = table_definitions()[template_base(family)]
    keys = {k["KeyType"]: k["AttributeName"] for k in definition.properties["KeySchema"]}
    return TableRule(keys["HASH"], keys.get("RANGE"), definition.ttl_attribute)


class Rebuilder:
    def __init__(self, client: Any, store: EventStore, *, prefix: str, views: Sequence[View[Any]],
                 live_tables: Mapping[str, str], versions: VersionsConfig, state_dir: Path,
                 options: RebuildOptions = RebuildOptions(),
                 progress: Callable[[int | None], Progress] | None = None) -> None:
        self._client = client
        self._store = store
        self._prefix = prefix
        self._views = list(views)
        self._by_category = {view.category: view for view in self._views}
        self._live = live_tables
        self._versions = versions
        self._state_dir = state_dir
        self.options = options
        self._progress = progress or Progress
        self._settled: dict[str, int] = {}  # streams folded to a version that shows no row
        self._lock = threading.Lock()

    @property
    def families(self) -> list[str]:
        return [family for view in self._views for family in view.families]

    @property
    def progress_path(self) -> Path:
        name = "+".join(sorted(view.name for view in self._views))
        return self._state_dir / "rebuilds" / f"{self._prefix}{name}.json"

    # ------------------------------------------------------------------ plan

    def plan(self, *, restart: bool = False) -> tuple[RebuildProgress, bool]:
        """The rebuild to run: the unfinished one recorded earlier (resumed), or a new one."""
        if self.progress_path.exists() and not restart:
            saved = RebuildProgress.from_json(json.loads(self.progress_path.read_text()))
            if not saved.finished:
                return saved, True
        names = list_table_names(self._client)
        targets = {family: local_table_name(
            self._prefix, f"{family}-{next_version(family, version_of(self._live[family]), names, self._prefix)}")
            for family in self.families}
        return RebuildProgress([view.name for view in self._views], targets, self.options.segments), False

    def estimate(self) -> Estimate:
        """What a rebuild would read and write, from table statistics and a one-page sample. Changes nothing."""
        log = table_stats(self._client, self._store.events_table)
        sample: set[str] = set()
        sampled = 0
        for _, page in self._store.scan_pages(1, page_size=1000, keys_only=True):
            for item in page or ():
                sample.add(item["stream"]["S"])
                sampled += 1
            break
        live = {}
        for family in self.families:
            try:
                stats = table_stats(self._client, self._live[family])
            except self._client.exceptions.ResourceNotFoundException:
                stats = {"items": 0, "bytes": 0}
            live[family] = (stats["items"], stats["bytes"])
        return estimate(LogStats(log["items"], log["bytes"], len(sample), sampled), live,
                        events_per_second=ASSUMED_EVENTS_PER_SECOND, max_write_rate=self.options.max_write_rate)

    # ------------------------------------------------------------------ run

    def run(self, progress: RebuildProgress, *, resumed: bool = False, switch: bool = False,
            say: Callable[[str], None] = lambda line: None) -> RebuildResult:
        started = time.monotonic()
        for family, table in progress.targets.items():
            if create_copy(self._client, template_base(family), table):
                say(f"created {table}")
        self._save(progress)
        if resumed:
            say(f"resuming: {len(progress.done_segments)} of {progress.total_segments} segments already done")
        filling = time.monotonic()
        self._fill(progress)
        result = RebuildResult(progress, resumed, fill_seconds=time.monotonic() - filling)
        result.caught_up = self.catch_up(progress)
        result.comparison = self.compare(progress)
        for _ in range(self.options.compare_attempts - 1):
            if result.comparison.equal or not result.comparison.in_flight:
                break
            time.sleep(self.options.settle_seconds)  # let live processing catch up too
            result.caught_up += self.catch_up(progress)
            result.comparison = self.compare(progress)
        progress.finished = True
        self._save(progress)
        if switch and result.comparison.equal:
            result.switched = self._versions.write({family: version_of(t) for family, t in progress.targets.items()})
            result.caught_up += self.catch_up(progress)
        result.seconds = time.monotonic() - started
        return result

    def _fill(self, progress: RebuildProgress) -> None:
        total = table_stats(self._client, self._store.events_table)["items"]
        bar = self._progress(total or None)
        bar.advance(progress.events)
        limiter = RateLimiter(self.options.max_write_rate, time.monotonic, time.sleep)
        writers = ThreadPoolExecutor(max_workers=self.options.workers * self.options.writers_per_segment,
                                     thread_name_prefix="rebuild-writer")

        def fill_segment(segment: int) -> None:
            events = streams = rows = 0
            failed: list[str] = []
            with BulkWriter(self._client, workers=self.options.writers_per_segment, limiter=limiter,
                            pool=writers) as writer:
                pages = self._store.scan_pages(progress.total_segments, [segment])
                items = (item for _, page in pages if page for item in page)
                for folded in replay(items, self._by_category):
                    events += folded.events
                    streams += 1
                    if folded.error:
                        failed.append(f"{folded.stream}: {folded.error}")
                    elif not folded.rows:
                        with self._lock:
                            self._settled[folded.stream] = folded.version
                    for family, row in folded.rows:
                        writer.put(progress.targets[family], row)
                    rows += len(folded.rows)
                    bar.advance(folded.events)
            with self._lock:  # only once every row of the segment is written
                progress.segment_done(segment, events, streams, rows, failed)
                self._save(progress)

        try:
            with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="rebuild") as pool:
                for finished in [pool.submit(fill_segment, s) for s in progress.pending_segments]:
                    finished.result()
        finally:
            writers.shutdown(wait=True)
        bar.finish()

    # ------------------------------------------------------------------ catch up

    def catch_up(self, progress: RebuildProgress) -> int:
        """Apply events appended since the rebuilt rows were written; returns events applied."""
        heads: dict[str, int] = {}
        for _, page in self._store.scan_pages(progress.total_segments, keys_only=True):
            for item in page or ():
                stream = item["stream"]["S"]
                if stream.split(":", 1)[0] in self._by_category:
                    heads[stream] = max(heads.get(stream, 0), int(item["version"]["N"]))
        rebuilt = self._rebuilt_versions(progress)
        moved = {s: max(rebuilt.get(s, 0), self._settled.get(s, 0)) for s in heads}
        moved = {s: have for s, have in moved.items() if heads[s] > have}
        if not moved:
            return 0
        projector = BatchProjector(ViewStore(self._client, progress.targets), self._store.read_stream, self._views,
                                   max_workers=4)
        entries: list[Entry] = []
        for stream, have in moved.items():
            for item in self._store.read_items(stream, have + 1):
                try:
                    entries.append(Entry(str(len(entries)), stream, from_item(item)))
                except (DynafoldError, ValueError) as error:
                    progress.failed_streams.append(f"{stream}: {type(error).__name__}: {error}")
                    break
        applied = 0
        for first in range(0, len(entries), _CATCH_UP_BATCH):
            outcome = projector.project(entries[first:first + _CATCH_UP_BATCH])
            applied += sum(outcome.applied.values())
            progress.failed_streams.extend(f"{s.stream}: {s.failure}" for s in outcome.streams if s.failure)
        with self._lock:
            for stream in moved:
                self._settled[stream] = max(self._settled.get(stream, 0), heads[stream])
        return applied

    def _rebuilt_versions(self, progress: RebuildProgress) -> dict[str, int]:
        versions: dict[str, int] = {}
        for view in self._views:
            table = progress.targets[view.table]
            for item in scan_items(self._client, table, progress.total_segments, (STREAM_ATTR, VERSION_ATTR)):
                if STREAM_ATTR in item and VERSION_ATTR in item:
                    stream, version = item[STREAM_ATTR]["S"], int(item[VERSION_ATTR]["N"])
                    versions[stream] = max(versions.get(stream, 0), version)
        return versions

    # ------------------------------------------------------------------ compare

    def compare(self, progress: RebuildProgress) -> Comparison:
        now = int(time.time())  # only to leave out rows whose TTL has passed
        comparison = Comparison()
        for family, target in progress.targets.items():
            rule = table_rule(family)
            live = digest_rows(self._rows(self._live[family], progress.total_segments), rule, now)
            rebuilt = digest_rows(self._rows(target, progress.total_segments), rule, now)
            compare_family(family, live, rebuilt, comparison)
        return comparison

    def _rows(self, table: str, segments: int) -> Any:
        return (row_from_item(item) for item in scan_items(self._client, table, segments))

    def _save(self, progress: RebuildProgress) -> None:
        self.progress_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.progress_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(progress.to_json(), indent=2))
        temporary.replace(self.progress_path)
