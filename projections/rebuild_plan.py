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
