"""Rebuild views from the event log into fresh versioned tables, prove them equal, switch.

The shell around ``projections.rebuild.replay`` (fold whole streams), ``projections.rebuild.comparison`` (row
hashes) and ``projections.rebuild.plan`` (versions, estimate, progress):

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
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from functools import lru_cache, partial
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from events.errors import DynafoldError
from events.sealing import Revealer, PersonalDataLog, reveal_of
from events.store import EventStore
from processors.operations.progress import Progress
from processors.services.rebuild_segment import SegmentResult, SegmentTask, SegmentWorker
from processors.operations.tables import create_copy, database_identity, list_table_names
from processors.operations.template import local_table_name, table_definitions
from processors.services.rebuild_compare import RebuildComparer, Settled
from projections.rebuild.comparison import Comparison, TableRule
from projections.rebuild.plan import (
    NEW_TABLE_WRITES,
    SCAN_ITEMS_PER_S_PER_SEGMENT,
    TABLE_WRITE_QUOTA,
    Estimate,
    LogStats,
    RebuildProgress,
    ScaleEstimate,
    estimate,
    next_version,
    scale_estimate,
)
from projections.view import View
from projections.view_tables import table_stats

# A dry run's time estimate when nothing has been measured: DynamoDB Local on a small machine
# (see `make bench`); on AWS, on-demand tables go faster.
ASSUMED_EVENTS_PER_SECOND = 3000.0
# Measured by `make bench` (benchmarks/rebuild.py, 30,000 events, 2026-11-28) on this project's
# shared 2-core machine with DynamoDB Local: one local worker end to end (1,226-1,386 events/s);
# one segment compared, both sides scanned and digested (5,509-5,717 rows/s, the engine on the
# same cores). A Lambda worker (one vCPU) folds with the CPU the fold alone takes (decode, fold,
# serialize: 18,077 events/s measured) plus botocore's parsing of the scan pages, about as much
# again: the plan keeps the earlier, lower 4,200 events/s; at 64 workers the write quota binds first.
LOCAL_WORKER_EVENTS_PER_SECOND = 1_220.0
FOLD_EVENTS_PER_SECOND_ONE_CORE = 4_200.0
COMPARE_ROWS_PER_SECOND = 5_500.0


def scale_plan(base: Estimate, *, on_aws: bool, workers: int, max_write_rate: float | None = None,
               warm_writes: int | None = None, warm_targets: int = 1,
               write_quota: int = TABLE_WRITE_QUOTA, segments: int | None = None,
               switch: bool = True) -> ScaleEstimate:
    """The dry run's estimate of a run with ``workers`` (local processes, or map concurrency on AWS);
    ``warm_writes`` None pre-warms the new tables to what that run will write (see scale_estimate)."""
    if on_aws:  # a worker scans its own segment: the slower of its scan and its fold
        mode, per_worker = "aws", min(FOLD_EVENTS_PER_SECOND_ONE_CORE, SCAN_ITEMS_PER_S_PER_SEGMENT)
    else:
        mode, per_worker = "local", LOCAL_WORKER_EVENTS_PER_SECOND
    return scale_estimate(base, mode=mode, workers=workers, worker_events_per_second=per_worker,
                          compare_rows_per_second=COMPARE_ROWS_PER_SECOND, warm_writes=warm_writes,
                          warm_targets=warm_targets, write_quota=write_quota, max_write_rate=max_write_rate,
                          segments=segments, switch=switch)


def warm_targets(families: Sequence[str]) -> int:
    """Tables and global secondary indexes a rebuild of ``families`` creates (each is pre-warmed)."""
    definitions = [table_definitions()[template_base(family)].properties for family in families]
    return sum(1 + len(props.get("GlobalSecondaryIndexes", [])) for props in definitions)


def table_write_quota(client: Any) -> int:
    """The account's per-table write quota (DescribeLimits' TableMaxWriteCapacityUnits, raised quotas
    included); the default when the caller may not ask.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DescribeLimits.html"""
    try:
        return int(client.describe_limits()["TableMaxWriteCapacityUnits"])
    except ClientError:
        return TABLE_WRITE_QUOTA


def check_warm_writes(warm_writes: int | None, quota: int) -> None:
    """--warm-writes: 0 (off), or between the on-demand default and the table quota."""
    if warm_writes is None or warm_writes == 0:
        return
    if not NEW_TABLE_WRITES <= warm_writes <= quota:
        raise DynafoldError(f"--warm-writes must be 0 (off) or {NEW_TABLE_WRITES:,}..{quota:,} (the on-demand "
                            f"default..the table write quota), got {warm_writes:,}")


class VersionsConfig(Protocol):
    def read(self) -> dict[str, str]: ...
    def write(self, changes: Mapping[str, str]) -> dict[str, str]: ...


@dataclass(frozen=True)
class RebuildOptions:
    segments: int = 4
    workers: int = 1  # processes running the segment worker
    writers_per_segment: int = 4  # BatchWriteItem threads of each worker
    slice_seconds: float = 30.0  # a worker's budget per call: the progress file moves on this often
    page_size: int | None = None
    max_write_rate: float | None = None
    warm_writes: int | None = None  # pre-warm the new tables: None = to what the fill will write, 0 = off
    settle_seconds: float = 60.0  # the bound on waiting for the live projector to pass a rebuilt stream
    poll_seconds: float = 0.5

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
    from projections.registry import UNITS

    definition = table_definitions()[template_base(family)]
    keys = {k["KeyType"]: k["AttributeName"] for k in definition.properties["KeySchema"]}
    [category] = [unit.view.category for unit in UNITS if family in unit.view.families]
    sharded = tuple(key.attribute for unit in UNITS if unit.view.table == family for key in unit.row.sharded)
    return TableRule(keys["HASH"], keys.get("RANGE"), definition.ttl_attribute, category, sharded)


def rebuilds_filling(state_dir: Path, table: str) -> list[tuple[Path, dict[str, str]]]:
    """(progress file, its targets) of every recorded rebuild that fills ``table``."""
    found = []
    for path in sorted((state_dir / "rebuilds").glob("*.json")):
        targets = dict(json.loads(path.read_text()).get("targets", {}))
        if table in targets.values():
            found.append((path, targets))
    return found


_WORKER_PROCESS: dict[str, Any] = {"stop": None}  # its stop event, which the parent sets on Ctrl-C


def _start_worker_process(stop: Any) -> None:
    """A worker process leaves Ctrl-C to its parent (which stops every slice at its next stream,
    records where each stopped, and says so in one line), and ends its slice when told to."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_PROCESS["stop"] = stop


def stoppable_clock(stop: Any) -> Callable[[], float]:
    """A worker's clock that jumps past any deadline once ``stop`` is set: the slice then ends after
    the stream it is folding, with its checkpoint, as if its time budget were spent."""
    return lambda: math.inf if stop is not None and stop.is_set() else time.monotonic()


@contextmanager
def _workers_spawned_without_ctrl_c(spawning: bool) -> Iterator[None]:
    """Worker processes start with Ctrl-C ignored (a disposition exec keeps, and Python then installs
    no KeyboardInterrupt handler): one interrupted while still importing would print a traceback
    and break the pool. The parent alone answers Ctrl-C; its workers spawn as slices are submitted."""
    if not spawning or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@lru_cache(maxsize=4)
def _process_worker(client_factory: Callable[[], Any], events_table: str, writers: int,
                    revealer: Callable[[], Revealer] | None) -> SegmentWorker:
    return SegmentWorker(client_factory(), events_table, writers=writers,
                         clock=stoppable_clock(_WORKER_PROCESS["stop"]),
                         reveal=None if revealer is None else revealer().reveal)


def run_slice(client_factory: Callable[[], Any], events_table: str, writers: int,
              revealer: Callable[[], Revealer] | None, payload: dict[str, Any]) -> dict[str, Any]:
    """One slice in a worker process: one client and worker per process, reused for its slices;
    ``writers`` BatchWriteItem threads, as in a one-process run; personal values revealed with
    keys the process reads itself (``revealer`` is picklable)."""
    return _process_worker(client_factory, events_table, writers, revealer).run(
        SegmentTask.from_json(payload)).to_json()


class Rebuilder:
    def __init__(self, client: Any, store: EventStore | PersonalDataLog, *, prefix: str, views: Sequence[View[Any]],
                 live_tables: Mapping[str, str], versions: VersionsConfig, state_dir: Path,
                 options: RebuildOptions = RebuildOptions(),
                 progress: Callable[[int | None], Progress] | None = None,
                 client_factory: Callable[[], Any] | None = None,
                 revealer: Callable[[], Revealer] | None = None) -> None:
        self._client = client
        self._client_factory = client_factory  # picklable: how worker processes connect
        self._revealer = revealer  # picklable: how they reveal personal values (as live processing folds them)
        self._store = store
        self._prefix = prefix
        self._views = list(views)
        self._live = live_tables
        self._versions = versions
        self._state_dir = state_dir
        self.options = options
        self._progress = progress or Progress
        self._lock = threading.Lock()
        self._database: str | None = None
        self.phase = "planning"  # where a run is, for an interruption's one line
        self.before_switch: Callable[[], None] = lambda: None  # e.g. check the rebuild lock is still held

    @property
    def database(self) -> str | None:
        """The database this rebuild reads and writes: its progress file is stamped with it, so an
        unfinished rebuild of another database (another engine, an in-memory run) is never resumed."""
        if self._database is None:
            self._database = database_identity(self._client, self._store.events_table)
        return self._database

    @property
    def versions_config(self) -> VersionsConfig:
        """Where a switch is written (views.json locally, the SSM parameter on AWS)."""
        return self._versions

    @property
    def live_tables(self) -> dict[str, str]:
        """family -> the active table of each family this rebuild fills."""
        return {family: self._live[family] for family in self.families}

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
            recorded = json.loads(self.progress_path.read_text())
            saved = RebuildProgress.from_json(recorded)
            if not saved.finished and recorded.get("database") == self.database:
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

    def plan_scale(self, base: Estimate | None = None, *, on_aws: bool = False, workers: int | None = None,
                   segments: int | None = None, switch: bool = True) -> ScaleEstimate:
        """The estimate of this rebuild at scale, with what its new tables are pre-warmed to."""
        quota = table_write_quota(self._client)
        check_warm_writes(self.options.warm_writes, quota)
        return scale_plan(self.estimate() if base is None else base, on_aws=on_aws,
                          workers=self.options.workers if workers is None else workers,
                          max_write_rate=self.options.max_write_rate, warm_writes=self.options.warm_writes,
                          warm_targets=warm_targets(self.families), write_quota=quota, segments=segments,
                          switch=switch)

    # ------------------------------------------------------------------ run

    def run(self, progress: RebuildProgress, *, resumed: bool = False, switch: bool = False,
            say: Callable[[str], None] = lambda line: None) -> RebuildResult:
        started = time.monotonic()
        self.phase = "creating the new tables"
        warm = 0 if resumed else self.plan_scale().warm_writes  # a resumed run's tables exist already
        for family, table in progress.targets.items():
            # The copy gets the template's protection, the live table's (the stack's) tags and the
            # warm throughput this fill needs; what the engine cannot apply is said, not skipped silently.
            if create_copy(self._client, template_base(family), table, tags_from=self._live.get(family),
                           warm_writes=warm, warn=say):
                say(f"created {table}" + (f" (pre-warmed to {warm:,} writes/s)" if warm else ""))
        self._save(progress)
        if resumed:
            say(f"resuming: {len(progress.done_segments)} of {progress.total_segments} segments already done")
        filling = time.monotonic()
        self.phase = "the fill"
        self._fill(progress, guard=resumed)
        result = RebuildResult(progress, resumed, fill_seconds=time.monotonic() - filling)
        self.phase = "the comparison (the fill is done)"
        settled = self.settle(progress)
        result.comparison, result.caught_up = settled.comparison, settled.caught_up
        if switch and result.comparison.equal:
            self.before_switch()
            self.phase = "the switch"
            result.switched = self._versions.write({family: version_of(t) for family, t in progress.targets.items()})
            progress.finished = True
            self._save(progress)
            self.phase = "the carry-over after the switch"
            result.caught_up += self.catch_up(progress)
        progress.finished = True
        self._save(progress)
        self.phase = "the end"
        result.seconds = time.monotonic() - started
        return result

    def _fill(self, progress: RebuildProgress, *, guard: bool = False) -> None:
        """Run the segment worker over every unfinished segment, slice by slice, in ``workers``
        processes (one: in this process); the progress file moves on after every slice."""
        total = table_stats(self._client, self._store.events_table)["items"]
        bar = self._progress(total or None)
        bar.advance(progress.events)
        options = self.options
        rate = options.max_write_rate / options.workers if options.max_write_rate else None

        def task(segment: int, start_key: dict[str, Any] | None, guarded: bool) -> SegmentTask:
            return SegmentTask(tuple(view.name for view in self._views), progress.targets, segment,
                               progress.total_segments, start_key, guarded, options.slice_seconds,
                               options.page_size, rate)

        pool: Executor
        run: Callable[[dict[str, Any]], dict[str, Any]]
        stop: Any
        if options.workers > 1:
            if self._client_factory is None:
                raise DynafoldError("--workers > 1 needs an endpoint the worker processes can connect to")
            spawn = multiprocessing.get_context("spawn")
            stop = spawn.Event()
            pool = ProcessPoolExecutor(max_workers=options.workers, mp_context=spawn,
                                       initializer=_start_worker_process, initargs=(stop,))
            run = partial(run_slice, self._client_factory, self._store.events_table, options.writers_per_segment,
                          self._revealer)
        else:
            stop = threading.Event()
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-segment")
            worker = SegmentWorker(self._client, self._store.events_table, writers=options.writers_per_segment,
                                   clock=stoppable_clock(stop), reveal=reveal_of(self._store))
            run = lambda payload: worker.run(SegmentTask.from_json(payload)).to_json()  # noqa: E731
        running: dict[Future[dict[str, Any]], int] = {}

        def record(future: Future[dict[str, Any]]) -> SegmentResult:
            result = SegmentResult.from_json(future.result())
            with self._lock:
                progress.slice_done(result.segment, result.next_key, result.events, result.streams,
                                    result.rows, result.failed)
                self._save(progress)
            bar.advance(result.events)
            return result

        try:
            with _workers_spawned_without_ctrl_c(options.workers > 1):
                for segment in progress.pending_segments:
                    payload = task(segment, progress.checkpoints.get(segment), guard).to_json()
                    running[pool.submit(run, payload)] = segment
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    del running[future]
                    result = record(future)
                    if not result.done:  # the same guard: a resumed segment stays suspect to its end
                        payload = task(result.segment, result.next_key, guard).to_json()
                        running[pool.submit(run, payload)] = result.segment
        except KeyboardInterrupt:
            # Ctrl-C: every running slice ends after the stream it is on; what they did is recorded,
            # so the same command resumes exactly there. A second Ctrl-C leaves at once.
            stop.set()
            for future in running:
                future.cancel()
            for future in running:
                if not future.cancelled() and future.exception() is None:
                    record(future)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.finish()

    # ------------------------------------------------------------------ catch up

    def catch_up(self, progress: RebuildProgress) -> int:
        """Apply to the new tables what the live ones have applied beyond them; returns events
        applied. The same pass the state machine runs after a switch on AWS (``catch_up_segments``):
        what live processing wrote to the old tables while the switch took effect is carried over."""
        settled = self._comparer(progress).catch_up_segments()
        progress.failed_streams.extend(f for f in settled.failed_streams if f not in progress.failed_streams)
        return settled.caught_up

    # ------------------------------------------------------------------ compare

    def _comparer(self, progress: RebuildProgress) -> RebuildComparer:
        return RebuildComparer(self._client, self._store, self._views, self._live, progress.targets,
                               {family: table_rule(family) for family in progress.targets},
                               segments=progress.total_segments)

    def settle(self, progress: RebuildProgress, settle_seconds: float | None = None) -> Settled:
        """Catch the rebuilt tables up and compare them with the live ones at a common version per stream."""
        settled = self._comparer(progress).compare(
            self.options.settle_seconds if settle_seconds is None else settle_seconds, self.options.poll_seconds)
        progress.failed_streams.extend(f for f in settled.failed_streams if f not in progress.failed_streams)
        return settled

    def compare(self, progress: RebuildProgress, settle_seconds: float = 0.0) -> Comparison:
        """The comparison as the tables stand (by default: no catch-up, no waiting)."""
        return self.settle(progress, settle_seconds).comparison

    def _save(self, progress: RebuildProgress) -> None:
        self.progress_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.progress_path.with_suffix(".tmp")
        temporary.write_text(json.dumps({**progress.to_json(), "database": self.database}, indent=2))
        temporary.replace(self.progress_path)
