"""Marking alerts read, one by id or every unread one matching a filter (issue 19 §A6).

One service for `POST /alerts/{id}/read`, `POST /alerts/read` and `dynafold alerts read`. A read is
an `alert read` event appended to the alert's stream at the version its history was read at, and
only for an alert that is still unread: marking a read alert again appends nothing and says so, so
any retry, or two operators at once, changes nothing twice. Ids are all checked before anything is
appended: one unknown id refuses the whole request (NotFound), nothing is marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.alerts import AlertRead
from events.envelope import NewEvent, RecordedEvent
from events.errors import DynafoldError, NotFound, VersionConflict
from events.ports import EventLog
from events.store import AppendResult
from projections.alerts import AlertsProjection
from projections.alerts.queries import AlertQueries, check_alert_type, check_severity
from projections.unit import time_bound

ALERT_READ = "dynafold.alerts.read.v1"
_ATTEMPTS = 3  # a conflict is another read (or a raise) landing first: read the history again


class NoFilter(DynafoldError):
    """Marking by filter with no filter at all would mark every alert: refused, name one."""


@dataclass(frozen=True)
class AlertFilter:
    """Unread alerts of a type, SKU and severity, raised before a time (each optional, at least one)."""

    alert_type: str | None = None
    sku: str | None = None
    severity: str | None = None
    before: str | None = None  # stored time form

    @classmethod
    def of(cls, alert_type: str | None = None, sku: str | None = None, severity: str | None = None,
           before: str | datetime | None = None) -> "AlertFilter":
        """Checked: an unknown type or severity or an unreadable time is bad input (nothing marked)."""
        where = cls(check_alert_type(alert_type) if alert_type else None, sku or None,
                    check_severity(severity) if severity else None,
                    time_bound(before, "before") if before else None)
        if where.alert_type is None and where.sku is None and where.severity is None and where.before is None:
            raise NoFilter("give at least one of type, sku, severity, before (before=now marks every unread alert)")
        return where

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.alert_type, "sku": self.sku, "severity": self.severity, "before": self.before}


@dataclass(frozen=True)
class Marked:
    """One alert's outcome: marked now (with the append's stream, version and event id), or already read."""

    alert_id: str
    already_read: bool
    version: int
    event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "stream": f"alert:{self.alert_id}", "version": self.version,
                "event_id": self.event_id, "already_read": self.already_read}


@dataclass(frozen=True)
class ReadOutcome:
    marked: tuple[Marked, ...]
    dry_run: bool = False
    where: AlertFilter | None = None

    @property
    def newly_read(self) -> list[Marked]:
        return [m for m in self.marked if not m.already_read]

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "filter": self.where.to_dict() if self.where else None,
                "matched": len(self.marked), "marked_read": len(self.newly_read),
                "already_read": len(self.marked) - len(self.newly_read),
                "alerts": [m.to_dict() for m in self.marked]}

    def text(self) -> str:
        verb = "would mark" if self.dry_run else "marked"
        if not self.marked:
            return "no unread alert matches" if self.where else "nothing to mark"
        already = len(self.marked) - len(self.newly_read)
        lines = [f"{verb} {len(self.newly_read)} alert(s) read" + (f"; {already} already read" if already else "")]
        lines += [f"  {m.alert_id}  {'already read' if m.already_read else verb.split()[-1] + ' read'}"
                  for m in self.marked]
        return "\n".join(lines)


class AlertReads:
    def __init__(self, store: EventLog, alerts: AlertQueries) -> None:
        self._store = store
        self._alerts = alerts

    def mark(self, alert_ids: Sequence[str], *, read_by: str | None, source: str,
             correlation_id: str | None = None, dry_run: bool = False) -> ReadOutcome:
        """Mark each alert read; every id is looked up first and an unknown one marks nothing."""
        ids = list(dict.fromkeys(alert_ids))  # an id given twice is marked once
        if not ids:
            raise DynafoldError("give at least one alert id")
        histories = {alert_id: self._history(alert_id) for alert_id in ids}
        unknown = [alert_id for alert_id, events in histories.items() if not events]
        if unknown:
            raise NotFound(f"alert {', '.join(repr(a) for a in unknown)} (nothing was marked)")
        return ReadOutcome(tuple(self._mark_one(alert_id, histories[alert_id], read_by, source, correlation_id,
                                                dry_run) for alert_id in ids), dry_run)

    def mark_matching(self, where: AlertFilter, *, read_by: str | None, source: str,
                      correlation_id: str | None = None, dry_run: bool = False) -> ReadOutcome:
        """Mark every unread alert the filter matches (the sparse by-unread index: never a scan)."""
        found = self._alerts.find(unread=True, severity=where.severity, sku=where.sku, alert_type=where.alert_type,
                                  before=where.before, newest_first=False)
        return ReadOutcome(tuple(self._mark_one(alert.alert_id, self._history(alert.alert_id), read_by, source,
                                                correlation_id, dry_run) for alert in found), dry_run, where)

    def _history(self, alert_id: str) -> list[RecordedEvent]:
        if not alert_id or not alert_id.strip():
            raise DynafoldError("an alert id cannot be empty")
        return self._store.read_stream(f"alert:{alert_id}")

    def _mark_one(self, alert_id: str, events: list[RecordedEvent], read_by: str | None, source: str,
                  correlation_id: str | None, dry_run: bool) -> Marked:
        stream = f"alert:{alert_id}"
        for attempt in range(1, _ATTEMPTS + 1):
            if AlertsProjection.fold(alert_id, events).read:
                return Marked(alert_id, True, events[-1].version)
            if dry_run:
                return Marked(alert_id, False, events[-1].version)
            event = NewEvent(ALERT_READ, AlertRead(alert_id=alert_id, read_by=read_by), source=source,
                             correlation_id=correlation_id)
            try:
                result: AppendResult = self._store.append(stream, [event], events[-1].version)
            except VersionConflict:
                if attempt == _ATTEMPTS:
                    raise  # it kept changing: the caller retries (safe: a read alert is never marked twice)
                events = self._history(alert_id)  # someone got there first: is it read now?
                continue
            return Marked(alert_id, False, result.last_version, result.event_ids[0])
        raise AssertionError("unreachable: the last attempt returns or raises")
