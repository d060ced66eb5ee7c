"""Plan a rebuild: which tables it fills, what it will cost, how far it got. Pure.

A rebuild of a view fills a fresh, versioned copy of each of the view's table families
(``inventory-v1`` live -> ``inventory-v2``), so the live tables keep serving meanwhile. Its
progress (finished scan segments) is kept as JSON so an interrupted rebuild resumes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from events.errors import DynafoldError

_VERSION = re.compile(r"^v([1-9][0-9]*)$")
# What one item costs: a read unit covers 4 KB (eventually consistent reads cost half), a write unit 1 KB.
READ_UNIT_BYTES, WRITE_UNIT_BYTES = 4096, 1024


class InvalidRebuild(DynafoldError, ValueError):
    pass


def version_number(version: str) -> int:
    match = _VERSION.match(version)
    if not match:
        raise InvalidRebuild(f"invalid view version {version!r}: expected v1, v2, ...")
    return int(match[1])


def existing_versions(family: str, table_names: Iterable[str], prefix: str) -> list[int]:
    """Version numbers of a family's tables among ``table_names`` (``<prefix><family>-v<N>``)."""
    pattern = re.compile(rf"^{re.escape(prefix + family)}-v([1-9][0-9]*)$")
    return sorted(int(m[1]) for m in map(pattern.match, table_names) if m)


def next_version(family: str, active: str, table_names: Iterable[str], prefix: str) -> str:
    """One past every version that exists or is active: a rebuild never writes into a table in use."""
    return f"v{max([version_number(active), *existing_versions(family, table_names, prefix)]) + 1}"


@dataclass(frozen=True)
class LogStats:
    events: int
    bytes: int
    streams_sampled: int = 0  # distinct streams among the sampled events
    events_sampled: int = 0


@dataclass(frozen=True)
class Estimate:
    events: int
    streams: int
    rows: int
    read_units: int
    write_units: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "streams": self.streams, "rows": self.rows, "read_units": self.read_units,
                "write_units": self.write_units, "seconds": round(self.seconds, 1)}


def estimate(log: LogStats, live_rows: Mapping[str, tuple[int, int]], *, events_per_second: float,
             max_write_rate: float | None = None) -> Estimate:
    """What a rebuild costs: the whole log read once (a consistent scan; a catch-up pass reads keys
    again), every live row written once; ``live_rows`` is family -> (items, bytes) of the live tables.
    Time is the slower of reading at ``events_per_second`` and writing at ``max_write_rate``."""
    per_stream = log.events_sampled / log.streams_sampled if log.streams_sampled else 1.0
    streams = math.ceil(log.events / per_stream) if log.events else 0
    rows = sum(items for items, _ in live_rows.values())
    write_units = sum(items * max(1, math.ceil((size / items) / WRITE_UNIT_BYTES)) if items else 0
                      for items, size in live_rows.values())
    read_units = math.ceil(log.bytes / READ_UNIT_BYTES) if log.bytes else 0
    seconds = log.events / events_per_second if events_per_second > 0 else 0.0
    if max_write_rate:
        seconds = max(seconds, rows / max_write_rate)
    return Estimate(log.events, streams, rows, read_units, write_units, seconds)


@dataclass
class RebuildProgress:
    """What a rebuild has done so far: kept as JSON beside the local settings, rewritten per segment."""

    views: list[str]
    targets: dict[str, str]  # family -> physical table being filled
    total_segments: int
    done_segments: list[int] = field(default_factory=list)
    events: int = 0
    streams: int = 0
    rows: int = 0
    failed_streams: list[str] = field(default_factory=list)  # streams whose events no longer decode
    finished: bool = False
    # segment -> where its next slice starts (the key of the last item of its last finished stream)
    checkpoints: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def pending_segments(self) -> list[int]:
        done = set(self.done_segments)
        return [s for s in range(self.total_segments) if s not in done]

    def segment_done(self, segment: int, events: int, streams: int, rows: int, failed: list[str]) -> None:
        if segment not in self.done_segments:
            self.done_segments.append(segment)
            self.events += events
            self.streams += streams
            self.rows += rows
            self.failed_streams.extend(failed)

    def slice_done(self, segment: int, next_key: Mapping[str, Any] | None, events: int, streams: int, rows: int,
                   failed: list[str]) -> None:
        """One slice of a segment finished (its rows written): count it and move the checkpoint on."""
        if next_key is None:
            self.checkpoints.pop(segment, None)
            self.segment_done(segment, events, streams, rows, failed)
            return
        self.checkpoints[segment] = dict(next_key)
        self.events += events
        self.streams += streams
        self.rows += rows
        self.failed_streams.extend(failed)

    def to_json(self) -> dict[str, Any]:
        return {"views": self.views, "targets": self.targets, "total_segments": self.total_segments,
                "done_segments": sorted(self.done_segments), "events": self.events, "streams": self.streams,
                "rows": self.rows, "failed_streams": self.failed_streams, "finished": self.finished,
                "checkpoints": {str(s): key for s, key in sorted(self.checkpoints.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RebuildProgress":
        return cls(views=list(data["views"]), targets=dict(data["targets"]),
                   total_segments=int(data["total_segments"]), done_segments=list(data["done_segments"]),
                   events=int(data["events"]), streams=int(data["streams"]), rows=int(data["rows"]),
                   failed_streams=list(data.get("failed_streams", [])), finished=bool(data.get("finished")),
                   checkpoints={int(s): dict(key) for s, key in data.get("checkpoints", {}).items()})


# ---------------------------------------------------------------------------- at scale (issue 14)

# DynamoDB on-demand defaults: a table's throughput quota (per second) and what a *new* on-demand
# table sustains before it has seen traffic, unless created with warm throughput.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html
TABLE_READ_QUOTA, TABLE_WRITE_QUOTA = 40_000, 40_000
NEW_TABLE_READS, NEW_TABLE_WRITES = 12_000, 4_000
# Pre-warming (CreateTable's WarmThroughput, on the table and on each of its global secondary
# indexes, which start at the same defaults and throttle the table's writes through back-pressure)
# lets a new table take its peak at once; it is charged once, for the units raised above the
# defaults, at the "Warm throughput" rate of the pricing page (that rate is not in our cost: it was
# not available to us; the dry run prints the units instead). Values are capped by the table quota.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/create-table-warm-throughput.html
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_WarmThroughput.html
# https://aws.amazon.com/dynamodb/pricing/on-demand/
# A fill that writes for less than this long at the cold rate is not worth pre-warming: the table
# would finish (and adapt: on-demand doubles its previous peak within 30 minutes) before it mattered.
PREWARM_MIN_SECONDS = 300.0
# us-east-1 on-demand and Lambda (arm64) prices, USD: per million read / write request units,
# per GB-second. https://aws.amazon.com/dynamodb/pricing/on-demand/ https://aws.amazon.com/lambda/pricing/
PRICE_PER_MILLION_READS, PRICE_PER_MILLION_WRITES, PRICE_PER_GB_SECOND = 0.125, 0.625, 0.0000133334
WORKER_MEMORY_GB = 1.769  # template.yaml RebuildSegmentFunction: one vCPU
SCAN_ITEMS_PER_S_PER_SEGMENT = 20_000.0  # one Scan page (1 MB) in ~50 ms per segment, at ~500 B an event
COMPARE_STEP_SECONDS = 840.0  # RebuildCompareFunction's Timeout (900 s) less the safety margin
# After a switch on AWS the state machine waits this long, then runs the compare map once more to
# carry over what the old tables got meanwhile: functions read the active versions through a 30 s
# cache (adapters.view_versions.SsmVersions max_age) and a projector invocation that read the old
# ones may run to its 60 s timeout (template.yaml Globals) after a 1 s batching window; 29 s spare.
# An integer: the state machine's Wait state takes whole seconds (SecondsPath).
SWITCH_WAIT_SECONDS = 30 + 60 + 1 + 29


@dataclass(frozen=True)
class ScaleEstimate:
    mode: str  # "local" or "aws"
    workers: int  # processes, or map concurrency
    events: int
    streams: int
    rows: int
    read_units: int
    write_units: int
    worker_events_per_second: float
    fill_seconds: float
    compare_seconds: float  # every segment compared, both sides scanned (the compare map on AWS)
    bound: str  # what limits the fill: "workers", "read quota", "write quota"
    cost_usd: float
    assumptions: tuple[str, ...]
    warm_writes: int = 0  # WarmThroughput.WriteUnitsPerSecond of the new tables; 0: not pre-warmed
    prewarm_units: int = 0  # write units/s raised above the default, over every table and index warmed
    switch_seconds: float = 0.0  # with --switch on AWS: the wait for version caches and the carry-over map

    @property
    def seconds(self) -> float:
        return self.fill_seconds + self.compare_seconds + self.switch_seconds

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "workers": self.workers, "events": self.events, "streams": self.streams,
                "rows": self.rows, "read_units": self.read_units, "write_units": self.write_units,
                "worker_events_per_second": round(self.worker_events_per_second),
                "fill_seconds": round(self.fill_seconds, 1), "compare_seconds": round(self.compare_seconds, 1),
                "switch_seconds": round(self.switch_seconds, 1),
                "seconds": round(self.seconds, 1), "bound": self.bound, "cost_usd": round(self.cost_usd, 2),
                "warm_writes": self.warm_writes, "prewarm_units": self.prewarm_units,
                "assumptions": list(self.assumptions)}


def warm_writes_for(write_units: int, write_rate: float, quota: int = TABLE_WRITE_QUOTA) -> int:
    """WarmThroughput.WriteUnitsPerSecond for a rebuild's new tables: the rate the fill will write
    (``write_rate`` write units/s), rounded up to a thousand and capped by the table ``quota``; 0
    (leave them at the on-demand default) when the default already takes that rate or when the
    fill's ``write_units`` take under PREWARM_MIN_SECONDS even at the default rate."""
    if write_rate <= NEW_TABLE_WRITES or write_units <= NEW_TABLE_WRITES * PREWARM_MIN_SECONDS:
        return 0
    return min(quota, math.ceil(write_rate / 1000) * 1000)


def scale_estimate(base: Estimate, *, mode: str, workers: int, worker_events_per_second: float,
                   compare_rows_per_second: float, warm_writes: int | None = None, warm_targets: int = 1,
                   write_quota: int = TABLE_WRITE_QUOTA, max_write_rate: float | None = None,
                   segments: int | None = None, switch: bool = True) -> ScaleEstimate:
    """Time and cost of a rebuild of ``base`` with ``workers`` segment workers each folding
    ``worker_events_per_second`` (measured), capped by the tables' on-demand throughput: the log is
    scanned once with eventually consistent reads (half a read unit per 4 KB), every row is written
    once; the comparison scans both sides' rows once more, segment by segment, each worker at
    ``compare_rows_per_second`` (on AWS the compare map runs ``workers`` segments at once; locally one
    process compares them all); on AWS a switch adds the wait for version caches and a second pass.

    ``warm_writes`` is what the new tables are pre-warmed to (None: what the fill will write, see
    warm_writes_for; 0: not pre-warmed); ``warm_targets`` counts the tables and indexes it applies to."""
    events_per_unit = max(1.0, base.events / base.read_units) if base.read_units else 8.0
    read_units = math.ceil(base.read_units / 2)  # eventually consistent Scan
    write_per_row = base.write_units / base.rows if base.rows else 1.0
    rows_per_event = base.rows / base.events if base.events else 0.0
    wanted = workers * worker_events_per_second
    write_rate = wanted * rows_per_event * write_per_row  # write units/s the workers would drive
    if max_write_rate:
        write_rate = min(write_rate, max_write_rate * write_per_row)
    if warm_writes is None:
        warm_writes = warm_writes_for(base.write_units, write_rate, write_quota)
    writes_cap = min(write_quota, max(NEW_TABLE_WRITES, warm_writes))
    if max_write_rate:
        writes_cap = min(writes_cap, int(max_write_rate))
    caps = {"workers": wanted, "read quota": TABLE_READ_QUOTA * events_per_unit * 2,
            "write quota": writes_cap / (rows_per_event * write_per_row) if rows_per_event else math.inf}
    bound = min(caps, key=lambda name: caps[name])
    rate = caps[bound]
    fill = base.events / rate if rate > 0 else 0.0
    comparing = workers if mode == "aws" else 1
    compare_work = 2 * base.rows / compare_rows_per_second if compare_rows_per_second > 0 else 0.0  # worker-s
    compare = compare_work / comparing
    passes = 2 if mode == "aws" and switch else 1
    switch_seconds = SWITCH_WAIT_SECONDS + compare if passes == 2 else 0.0
    cost = ((read_units + passes * 2 * base.rows) / 1e6 * PRICE_PER_MILLION_READS
            + base.write_units / 1e6 * PRICE_PER_MILLION_WRITES)
    if mode == "aws":
        cost += (workers * fill + passes * compare_work) * WORKER_MEMORY_GB * PRICE_PER_GB_SECOND
    prewarm_units = max(0, warm_writes - NEW_TABLE_WRITES) * warm_targets
    if warm_writes:
        warm_line = (f"new table versions pre-warmed to {warm_writes:,} writes/s (CreateTable WarmThroughput on "
                     f"{warm_targets} tables and indexes; reads stay at the {NEW_TABLE_READS:,}/s default, the "
                     f"compare reads slower): charged once for {prewarm_units:,} write units/s above the "
                     f"{NEW_TABLE_WRITES:,} default at the pricing page's warm throughput rate, not in the cost "
                     "above; --warm-writes 0 turns it off")
    else:
        warm_line = (f"new tables start at {NEW_TABLE_WRITES:,} writes/s (not pre-warmed: "
                     + ("--warm-writes 0)" if write_rate > NEW_TABLE_WRITES
                        and base.write_units > NEW_TABLE_WRITES * PREWARM_MIN_SECONDS
                        else f"the fill needs no more, or writes for under {PREWARM_MIN_SECONDS / 60:.0f} "
                             "minutes at that rate)"))
    assumptions: tuple[str, ...] = (
        f"one worker folds {worker_events_per_second:,.0f} events/s ("
        + ("measured by `make bench` on one core, fold only; a Lambda worker has one vCPU at 1,769 MB"
           if mode == "aws" else "measured here, DynamoDB Local") + ")",
        f"{workers} workers at once" + (" (Distributed Map MaxConcurrency; segments >= concurrency)" if mode == "aws"
                                        else " (local processes)"),
        f"on-demand table quota {TABLE_READ_QUOTA:,} read / {write_quota:,} write units per second",
        warm_line,
        "the log is read once with eventually consistent Scan; each row written once; the comparison "
        f"scans both sides segment by segment, {compare_rows_per_second:,.0f} rows/s per worker "
        + (f"({workers} segments at once: the compare map)" if mode == "aws" else "(one process)"),
        (f"with --switch: a {SWITCH_WAIT_SECONDS:.0f} s wait for the functions' version caches, then the "
         "comparison's pass once more to carry over what the old tables got meanwhile" if passes == 2
         else "no switch: no carry-over pass" if mode == "aws" else "the switch is local: no cache to wait for"),
        "under live traffic the comparison may wait up to --settle-seconds more for the live projector",
        "prices: us-east-1 on-demand and Lambda arm64 (USD)",
    )
    if mode == "aws" and segments:
        per_child = compare_work / segments
        if per_child > COMPARE_STEP_SECONDS:
            needed = math.ceil(compare_work / COMPARE_STEP_SECONDS)
            assumptions += (f"LIMIT: one segment's comparison needs ~{per_child:,.0f} s, more than one Lambda "
                            f"invocation ({COMPARE_STEP_SECONDS:.0f} s): use --segments {needed} or more",)
    return ScaleEstimate(mode, workers, base.events, base.streams, base.rows, read_units, base.write_units,
                         worker_events_per_second, fill, compare, bound, cost, assumptions, warm_writes,
                         prewarm_units, switch_seconds)


def assumed(events: int, *, events_per_stream: float = 10.0, rows_per_stream: float = 1.5,
            event_bytes: int = 500, row_bytes: int = 300) -> Estimate:
    """A hypothetical log (``--assume-events``): its size from typical shapes, to plan on paper."""
    streams = math.ceil(events / events_per_stream)
    rows = math.ceil(streams * rows_per_stream)
    return Estimate(events, streams, rows, math.ceil(events * event_bytes / READ_UNIT_BYTES),
                    rows * max(1, math.ceil(row_bytes / WRITE_UNIT_BYTES)), 0.0)
