"""`dynafold status` and `GET /status`: is everything caught up and healthy? (issue 19 §A4)

One service for the CLI, the route and the console's Health page, built by the composition root
over ``HealthSources``: ports with an AWS and a local implementation.

- ``MetricsReader``: CloudWatch GetMetricData on AWS; locally the EMF lines in the functions' log files;
- ``AlarmsReader``: DescribeAlarms (StateValue ALARM); locally template.yaml's alarms over those metrics;
- ``ReaderPositions``: none on AWS (Lambda keeps a mapping's position to itself); locally the stream
  runners' checkpoints and the failure queue's file;
- ``RebuildsReader``: the state machine's running executions; locally unfinished progress files.

Both sides ask the same metric questions: a reader's lag is Lambda's ``IteratorAge`` (the local
stream runner reports it as Lambda does) and the failure queue's ``ApproximateAgeOfOldestMessage``;
failures are the functions' own EMF counts. The view versions come from the tables the root reads
(SSM on AWS, views.json locally), the alerts naming failures from the alerts view. The summary in
words is pure: ``projections.health.status``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from projections.health.metrics import MetricQuery, Series, aligned
from projections.health.status import (
    DEFAULT_LAG_THRESHOLD_SECONDS,
    FAILURE_ALERTS,
    FAILURE_METRICS,
    READERS,
    AlarmsReading,
    FailureCount,
    Position,
    ReaderReading,
    RebuildRun,
    Status,
    summarise,
)
from projections.queries import ViewQueries
from projections.unit import InvalidQuery

DEFAULT_WINDOW = timedelta(hours=1)
MIN_WINDOW, MAX_WINDOW = timedelta(minutes=5), timedelta(days=1)
STACK_ENV, FAILURE_QUEUE_ENV = "DYNAFOLD_STACK_NAME", "STREAM_FAILURE_QUEUE_URL"
_VERSION = re.compile(r"-(v[0-9]+)$")


class MetricsReader(Protocol):
    def series(self, queries: Sequence[MetricQuery], start: datetime, end: datetime,
               period: int) -> dict[str, Series]:
        """Each query's statistic per period from ``start`` to ``end``, by query id."""
        ...


class AlarmsReader(Protocol):
    def in_alarm(self, now: datetime) -> AlarmsReading: ...


class ReaderPositions(Protocol):
    @property
    def where(self) -> str:
        """Where positions are kept, in words."""
        ...

    def read(self, now: datetime) -> dict[str, Position]:
        """Where each reader stands, by its service name, for the readers whose position is kept."""
        ...


class RebuildsReader(Protocol):
    def in_progress(self) -> list[RebuildRun]: ...


@dataclass(frozen=True)
class HealthSources:
    """Where a status reads from (``Adapters.health`` builds them, AWS's or the local stack's)."""

    metrics: MetricsReader
    alarms: AlarmsReader
    positions: ReaderPositions
    rebuilds: RebuildsReader


@dataclass(frozen=True)
class StatusSettings:
    """Which metrics are the readers': the functions are ``<stack>-<service>`` (template.yaml's
    FunctionName), the failure queue is the stack's StreamFailureQueue."""

    namespace: str = "dynafold"
    stack: str = "dynafold"
    failure_queue: str | None = None  # its QueueName; None: not configured (its lag is not read)
    lag_threshold_seconds: float = DEFAULT_LAG_THRESHOLD_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "StatusSettings":
        queue_url = env.get(FAILURE_QUEUE_ENV)
        return cls(namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "dynafold",
                   stack=env.get(STACK_ENV) or "dynafold",
                   failure_queue=queue_url.rstrip("/").rsplit("/", 1)[-1] if queue_url else None)

    def function(self, service: str) -> str:
        return f"{self.stack}-{service}"


def lag_queries(settings: StatusSettings) -> dict[str, tuple[MetricQuery, float]]:
    """reader -> (its lag metric, the factor to seconds). IteratorAge: "the age of the last record
    in the batch when Lambda received it", in milliseconds; the queue's oldest message age, in seconds."""
    queries = {
        reader: (MetricQuery.of(f"lag_{reader}", "AWS/Lambda", "IteratorAge",
                                {"FunctionName": settings.function(reader)}, "Maximum"), 0.001)
        for reader in ("projector", "reactor")
    }
    if settings.failure_queue:
        queries["stream-failures"] = (MetricQuery.of("lag_stream_failures", "AWS/SQS", "ApproximateAgeOfOldestMessage",
                                                     {"QueueName": settings.failure_queue}, "Maximum"), 1.0)
    return queries


def failure_queries(settings: StatusSettings) -> list[tuple[MetricQuery, str]]:
    """The functions' own failure counts, summed per period, with what each counts in words."""
    return [(MetricQuery.of(key, settings.namespace, name, {"service": service}, "Sum"), label)
            for key, name, service, label in FAILURE_METRICS]


def period_for(window: timedelta) -> int:
    """One point a minute up to six hours (a 60-point chart for the hour), five minutes beyond."""
    return 60 if window <= timedelta(hours=6) else 300


def versions_of(tables: Mapping[str, str]) -> dict[str, str]:
    """family -> the version of the table it reads now (``inventory-v2`` -> v2)."""
    found = {}
    for family in tables:
        match = _VERSION.search(tables[family])
        found[family] = match.group(1) if match else "unversioned"
    return found


@dataclass
class StatusService:
    sources: HealthSources
    queries: ViewQueries
    tables: Mapping[str, str]  # family -> the table read now (follows a switch)
    versions_source: str
    settings: StatusSettings = field(default_factory=StatusSettings)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))

    def status(self, window: timedelta = DEFAULT_WINDOW, lag_threshold_seconds: float | None = None) -> Status:
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise InvalidQuery(f"the window must be {int(MIN_WINDOW.total_seconds() // 60)}m..."
                             f"{int(MAX_WINDOW.total_seconds() // 3600)}h")
        now = self.clock()
        period = period_for(window)
        start = aligned(now - window, period)
        lags = lag_queries(self.settings)
        failures = failure_queries(self.settings)
        answered = self.sources.metrics.series([q for q, _ in lags.values()] + [q for q, _ in failures],
                                               start, now, period)
        positions = self.sources.positions.read(now)
        where = self.sources.positions.where
        readers = [self._reading(reader, lags.get(reader), answered, positions.get(reader), period, where)
                   for reader, _ in READERS]
        counts = [FailureCount(query.id, label, answered.get(query.id, Series(period=period)))
                  for query, label in failures]
        since = now - window
        alerts = [alert for kind in FAILURE_ALERTS
                  for alert in self.queries.alerts.find(severity="critical", alert_type=kind, since=since)]
        alerts.sort(key=lambda alert: (alert.time or "", alert.alert_id), reverse=True)
        return summarise(now=now, window=window, readers=readers, failures=counts, failure_alerts=alerts,
                         alarms=self.sources.alarms.in_alarm(now), versions=versions_of(self.tables),
                         versions_source=self.versions_source, rebuilds=self.sources.rebuilds.in_progress(),
                         lag_threshold_seconds=(self.settings.lag_threshold_seconds if lag_threshold_seconds is None
                                                else lag_threshold_seconds))

    def _reading(self, reader: str, lag: tuple[MetricQuery, float] | None, answered: Mapping[str, Series],
                 position: Position | None, period: int, where: str) -> ReaderReading:
        if lag is None:
            return ReaderReading(reader, Series(period=period), "the stream failure queue is not configured "
                                 f"(${FAILURE_QUEUE_ENV})", position, "its queue is not known", unit="failed batch")
        query, factor = lag
        series = answered.get(query.id, Series(period=period)).scaled(factor)
        dimensions = ", ".join(f"{name}={value}" for name, value in query.dimensions)
        if reader == "stream-failures":
            return ReaderReading(reader, series, f"lag: the age of the oldest failed batch waiting in its queue "
                                 f"({query.namespace} {query.name}, {dimensions})", position,
                                 "no datapoint in the window", unit="failed batch")
        return ReaderReading(reader, series, f"lag metric: {query.namespace} {query.name} of {dimensions}",
                             position, f"no position in {where}, and no {query.name} in the window: not invoked, "
                             "so idle or its event source mapping is stopped (the stalled alarm knows which)")
