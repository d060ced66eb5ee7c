"""`dynafold status`: is everything caught up and healthy? The summary in words, from readings.

The adapters read (local: checkpoints, the stand-ins' files, the functions' EMF lines; AWS:
CloudWatch, SSM, Step Functions, the tables); ``summarise`` turns what they read into a ``Status``:

- each reader (projector, reactor, failure consumer): its lag, the log head's time against the last
  event it applied, from its position where one is kept (the local stand-ins), else from the lag
  metric Lambda reports (IteratorAge; the failure queue's oldest message age), with that metric
  over the window as a series (the console draws it);
- failures and dead letters in the window: the metrics' totals and the alerts that name them;
- alarms in ALARM, active view versions, rebuilds in progress.

A status needs attention (``healthy`` is False, the CLI exits 1) when a reader is behind by more
than the lag threshold, an alarm is in ALARM, or anything failed or was dead-lettered in the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from events.envelope import format_time
from projections.alerts.fold import Alert
from projections.health.alarms import AlarmState
from projections.health.metrics import Series

# The readers, by their function's service name, and what a support engineer calls them.
READERS: tuple[tuple[str, str], ...] = (("projector", "projector"), ("reactor", "reactor"),
                                        ("stream-failures", "failure consumer"))
# The functions' own failure counts (EMF, alarmed on in template.yaml): (key, metric, service, label).
FAILURE_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("records_failed", "RecordsFailed", "projector", "records failed to project (the stream retries them)"),
    ("records_given_up", "FailedRecords", "stream-failures",
     "records a reader gave up on (their batches are in the stream failure queue)"),
    ("dead_lettered", "DeliveriesDeadLettered", "delivery-worker", "webhook deliveries dead-lettered"),
)
# The alerts that name a failure, and the failure count that counts the same thing.
FAILURE_ALERTS = {"record_failed": "records_given_up", "delivery_dead_lettered": "dead_lettered"}
DEFAULT_LAG_THRESHOLD_SECONDS = 60.0  # the readers' IteratorAge alarms' threshold (template.yaml)


def duration(seconds: float) -> str:
    """3.2 s, 4m05s, 2h10m: how far behind, in a terminal's width."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"


def _at(moment: datetime | None) -> str | None:
    return format_time(moment) if moment else None


@dataclass(frozen=True)
class Position:
    """Where a reader stands, from the state it keeps: ``lag_seconds`` is the log head's time
    against the last event it applied (0 when nothing waits); ``pending`` what waits for it."""

    lag_seconds: float
    pending: int
    head_time: datetime | None = None  # the newest thing it could read (None: nothing to read)
    applied_time: datetime | None = None  # the last thing it applied (None: nothing yet)
    pending_at_least: bool = False  # ``pending`` stopped counting at a bound


@dataclass(frozen=True)
class ReaderReading:
    """What was read of one reader: its position (None where none is kept), its lag metric over the
    window (in seconds), and how both were measured, in words."""

    reader: str  # the function's service name
    lag: Series
    basis: str
    position: Position | None = None
    unknown: str = ""  # why there is no position (said when there is no metric either)
    unit: str = "event"  # what ``pending`` counts


@dataclass(frozen=True)
class ReaderStatus:
    reader: str
    title: str
    lag_seconds: float | None  # None: not known (no position, no datapoint in the window)
    as_of: datetime | None  # when that lag was measured (a metric's period) or None for a position read now
    behind: bool
    sentence: str
    reading: ReaderReading

    def to_dict(self) -> dict[str, Any]:
        position = self.reading.position
        return {"reader": self.reader, "title": self.title, "lag_seconds": self.lag_seconds,
                "as_of": _at(self.as_of), "behind": self.behind, "sentence": self.sentence,
                "basis": self.reading.basis,
                "pending": position.pending if position else None,
                "head_time": _at(position.head_time) if position else None,
                "applied_time": _at(position.applied_time) if position else None,
                "lag_series": self.reading.lag.to_dict()}


@dataclass(frozen=True)
class FailureCount:
    """One failure metric over the window (Sum per period)."""

    key: str
    label: str
    series: Series

    @property
    def total(self) -> int:
        return int(self.series.total)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "total": self.total, "series": self.series.to_dict()}


@dataclass(frozen=True)
class RebuildRun:
    """A rebuild not finished: local progress files, or a running Step Functions execution."""

    views: tuple[str, ...]
    phase: str  # filling, comparing, carrying over after the switch, ...
    done: int  # segments
    total: int
    where: str  # the progress file or the execution ARN
    events: int | None = None
    updated: datetime | None = None  # its last progress (a progress file's time)
    started: datetime | None = None

    def sentence(self) -> str:
        counted = f", {self.events:,} events" if self.events is not None else ""
        when = (f"; started {format_time(self.started)}" if self.started else "") + (
            f"; last progress {format_time(self.updated)}" if self.updated else "")
        return (f"rebuild of {', '.join(self.views)}: {self.phase}, {self.done} of {self.total} segments"
                f"{counted}{when} ({self.where})")

    def to_dict(self) -> dict[str, Any]:
        return {"views": list(self.views), "phase": self.phase, "done_segments": self.done,
                "total_segments": self.total, "events": self.events, "updated": _at(self.updated),
                "started": _at(self.started),
                "where": self.where, "sentence": self.sentence()}


@dataclass(frozen=True)
class AlarmsReading:
    in_alarm: tuple[AlarmState, ...]
    source: str  # where the states come from, in words
    not_evaluated: tuple[str, ...] = ()  # alarms whose state is not known here, and why (locally)


@dataclass(frozen=True)
class Status:
    checked_at: datetime
    window: timedelta
    lag_threshold_seconds: float
    readers: tuple[ReaderStatus, ...]
    failures: tuple[FailureCount, ...]
    failure_alerts: tuple[Alert, ...]
    alarms: AlarmsReading
    versions: Mapping[str, str]  # family -> active version
    versions_source: str
    rebuilds: tuple[RebuildRun, ...]
    attention: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return not self.attention

    def answer(self) -> str:
        window = duration(self.window.total_seconds())
        if self.healthy:
            return (f"Healthy: every reader is within {duration(self.lag_threshold_seconds)} of the log, nothing "
                    f"failed or was dead-lettered in the last {window}, and no alarm is in ALARM.")
        return "Needs attention: " + "; ".join(self.attention) + "."

    def text(self) -> str:
        window = duration(self.window.total_seconds())
        lines = [self.answer(), "",
                 "Readers (lag: the log head's time against the last event each applied):"]
        lines += [f"  {reader.sentence}" for reader in self.readers]
        lines += ["", f"Failures and dead letters in the last {window}:"]
        lines += [f"  {count.label}: {count.total:,}" for count in self.failures]
        lines += [f"  {alert.time} {alert.alert_type} {alert.alert_id}: {alert.message}"
                  for alert in self.failure_alerts]
        lines += ["", f"Alarms in ALARM ({self.alarms.source}):"]
        lines += [f"  {alarm.name}: {alarm.reason}" for alarm in self.alarms.in_alarm] or ["  none"]
        if self.alarms.not_evaluated:
            lines.append(f"  not evaluated here: {len(self.alarms.not_evaluated)} (see --json)")
        lines += ["", f"Active view versions ({self.versions_source}):",
                  "  " + ", ".join(f"{family} {version}" for family, version in sorted(self.versions.items()))]
        lines += ["", "Rebuilds:"]
        lines += [f"  {run.sentence()}" for run in self.rebuilds] or ["  none in progress"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy, "answer": self.answer(), "attention": list(self.attention),
            "checked_at": format_time(self.checked_at), "window_seconds": int(self.window.total_seconds()),
            "lag_threshold_seconds": self.lag_threshold_seconds,
            "readers": [reader.to_dict() for reader in self.readers],
            "failures": {"counts": [count.to_dict() for count in self.failures],
                         "alerts": [alert.to_dict() for alert in self.failure_alerts]},
            "alarms": {"in_alarm": [alarm.to_dict() for alarm in self.alarms.in_alarm],
                       "source": self.alarms.source, "not_evaluated": list(self.alarms.not_evaluated)},
            "versions": dict(sorted(self.versions.items())), "versions_source": self.versions_source,
            "rebuilds": [run.to_dict() for run in self.rebuilds],
        }


def reader_status(reading: ReaderReading, threshold: float) -> ReaderStatus:
    """One reader's lag in a sentence: from its position when one is kept, else its lag metric."""
    title = dict(READERS).get(reading.reader, reading.reader)
    position, series = reading.position, reading.lag
    peak = series.peak
    over_window = f"; peak {duration(peak)} in the window" if peak else ""
    if position is not None:
        lag: float | None = position.lag_seconds
        as_of = None
        count = f"{'at least ' if position.pending_at_least else ''}{position.pending:,}"
        if position.pending == 0:
            last = f"the last {reading.unit} it applied, {_at(position.applied_time)}, is the newest" \
                if position.applied_time else f"there is no {reading.unit} to apply"
            sentence = f"{title}: caught up; {last}{over_window}."
        else:
            plural = reading.unit if position.pending == 1 else f"{reading.unit}s"
            applied = f"last applied {_at(position.applied_time)}" if position.applied_time else "none applied yet"
            sentence = (f"{title}: {duration(position.lag_seconds)} behind: {count} {plural} not yet applied "
                        f"(newest {_at(position.head_time)}, {applied}){over_window}.")
    elif series.latest is not None:
        lag, as_of = series.latest.value, series.latest.time
        sentence = (f"{title}: {duration(lag)} behind at its last measure ({_at(as_of)}){over_window}; "
                    f"{reading.basis}.")
    else:
        lag, as_of = None, None
        sentence = f"{title}: lag not known: {reading.unknown or 'no datapoint in the window'}; {reading.basis}."
    return ReaderStatus(reading.reader, title, lag, as_of, lag is not None and lag > threshold, sentence, reading)


def summarise(*, now: datetime, window: timedelta, readers: Sequence[ReaderReading],
              failures: Sequence[FailureCount], failure_alerts: Sequence[Alert], alarms: AlarmsReading,
              versions: Mapping[str, str], versions_source: str, rebuilds: Sequence[RebuildRun],
              lag_threshold_seconds: float = DEFAULT_LAG_THRESHOLD_SECONDS) -> Status:
    statuses = tuple(reader_status(reading, lag_threshold_seconds) for reading in readers)
    attention = [f"the {r.title} is {duration(r.lag_seconds or 0)} behind (more than "
                 f"{duration(lag_threshold_seconds)})" for r in statuses if r.behind]
    attention += [f"{count.label}: {count.total:,} in the last {duration(window.total_seconds())}"
                  for count in failures if count.total]
    # An alert counts only where its metric saw nothing (metrics can lag, or the window cut them off).
    counted = {count.key for count in failures if count.total}
    raised = [alert.alert_type for alert in failure_alerts if FAILURE_ALERTS.get(alert.alert_type or "") not in counted]
    attention += [f"{kind} alerts: {raised.count(kind)} raised in the last {duration(window.total_seconds())}"
                  for kind in FAILURE_ALERTS if kind in raised]
    attention += [f"alarm {alarm.name} is in ALARM" for alarm in alarms.in_alarm]
    return Status(now, window, lag_threshold_seconds, statuses, tuple(failures), tuple(failure_alerts), alarms,
                  dict(versions), versions_source, tuple(rebuilds), tuple(attention))
