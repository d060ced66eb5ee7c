"""Metric series as CloudWatch answers them: one statistic per period over a time range.

A ``MetricQuery`` names a metric exactly as CloudWatch matches it: namespace, name and the whole
dimension set (the same metric emitted with one more dimension is another metric, EMF spec:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
On AWS GetMetricData answers it; locally ``series_of`` buckets the values the functions printed as
EMF lines, by the same rules: periods from the start, the statistic over the values in each, a
period without values has no point (GetMetricData leaves it out too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from events.envelope import format_time

STATS = ("Sum", "Maximum", "Minimum", "Average", "SampleCount")
_QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]{0,254}$")  # GetMetricData's Id rule


@dataclass(frozen=True)
class MetricQuery:
    """``id`` names the answer (GetMetricData: a lower-case letter, then letters, digits, _)."""

    id: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    def __post_init__(self) -> None:
        if not _QUERY_ID.match(self.id):
            raise ValueError(f"metric query id {self.id!r} must match {_QUERY_ID.pattern}")
        if self.stat not in STATS:
            raise ValueError(f"unknown statistic {self.stat!r} (one of {', '.join(STATS)})")

    @classmethod
    def of(cls, query_id: str, namespace: str, name: str, dimensions: Mapping[str, str],
           stat: str) -> "MetricQuery":
        return cls(query_id, namespace, name, tuple(sorted(dimensions.items())), stat)

    def matches(self, namespace: str, name: str, dimensions: frozenset[tuple[str, str]]) -> bool:
        return namespace == self.namespace and name == self.name and dimensions == frozenset(self.dimensions)


@dataclass(frozen=True)
class Point:
    time: datetime  # the period's start
    value: float

    def to_dict(self) -> dict[str, Any]:
        return {"time": format_time(self.time), "value": self.value}


@dataclass(frozen=True)
class Series:
    """One statistic per period, oldest first; periods without data have no point."""

    points: tuple[Point, ...] = ()
    period: int = 60  # seconds

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def total(self) -> float:
        return sum(point.value for point in self.points)

    @property
    def peak(self) -> float | None:
        return max((point.value for point in self.points), default=None)

    def scaled(self, factor: float) -> "Series":
        """The same series in another unit (milliseconds -> seconds: 0.001)."""
        return Series(tuple(Point(p.time, p.value * factor) for p in self.points), self.period)

    def to_dict(self) -> dict[str, Any]:
        return {"period_seconds": self.period, "points": [point.to_dict() for point in self.points]}


@dataclass(frozen=True)
class Sample:
    """One value as a function emitted it (an EMF line holds one or many per metric)."""

    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    time: datetime
    value: float


def aggregate(values: Iterable[float], stat: str) -> float:
    found = list(values)
    if stat == "Sum":
        return float(sum(found))
    if stat == "Maximum":
        return float(max(found))
    if stat == "Minimum":
        return float(min(found))
    if stat == "Average":
        return float(sum(found) / len(found))
    if stat == "SampleCount":
        return float(len(found))
    raise ValueError(f"unknown statistic {stat!r}")


def series_of(samples: Iterable[Sample], query: MetricQuery, start: datetime, end: datetime,
              period: int) -> Series:
    """The query's statistic per ``period`` seconds from ``start`` (inclusive) to ``end`` (exclusive)."""
    if period <= 0:
        raise ValueError(f"period must be > 0 seconds, not {period}")
    buckets: dict[int, list[float]] = {}
    for sample in samples:
        if start <= sample.time < end and query.matches(sample.namespace, sample.name, sample.dimensions):
            index = int((sample.time - start).total_seconds() // period)
            buckets.setdefault(index, []).append(sample.value)
    return Series(tuple(Point(start + timedelta(seconds=index * period), aggregate(values, query.stat))
                        for index, values in sorted(buckets.items())), period)


def aligned(moment: datetime, period: int) -> datetime:
    """The start of the ``period``-second period holding ``moment`` (periods count from the epoch,
    so two readers of one range agree on its periods)."""
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % period, timezone.utc)
