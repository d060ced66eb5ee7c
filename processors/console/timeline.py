"""A delivery's attempts on a time line: when the message came in, each attempt and its outcome,
each retry scheduled, a redrive, the dead letter, and what lies ahead (the next retry, the window in
which it gives up). Pure layout over the delivery's history and its explanation's facts; the
template draws it as SVG (no script), each mark titled with what it was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.deliveries import DeadLettered, DeliveryAttempted, MessageReceived, RedriveRequested, RetryScheduled
from events.envelope import RecordedEvent, parse_time
from projections.explanation import said_time

WIDTH, LEFT, RIGHT = 900, 20, 20


@dataclass(frozen=True)
class Mark:
    kind: str  # received, delivered, failed, scheduled, redriven, dead-lettered, next, gives-up
    x: int
    title: str


@dataclass(frozen=True)
class Timeline:
    marks: list[Mark]
    window: tuple[int, int] | None  # the span in which it gives up (x from, x to), if still trying
    start: str
    end: str
    width: int = WIDTH


def _mark(event: RecordedEvent) -> tuple[str, str] | None:
    data, at = event.data, said_time(event.time)
    if isinstance(data, MessageReceived):
        return "received", f"{at}: received"
    if isinstance(data, DeliveryAttempted):
        outcome = "delivered" if data.success else (f"HTTP {data.status_code}" if data.status_code else data.category)
        return ("delivered" if data.success else "failed"), f"{at}: attempt {data.attempt}, {outcome}"
    if isinstance(data, RetryScheduled):
        return "scheduled", f"{at}: retry scheduled for {said_time(data.next_retry_at)}"
    if isinstance(data, RedriveRequested):
        return "redriven", f"{at}: redriven, attempt {data.attempt} due at once"
    if isinstance(data, DeadLettered):
        return "dead-lettered", f"{at}: dead-lettered ({data.reason})"
    return None


def timeline(history: Sequence[RecordedEvent], facts: Mapping[str, Any]) -> Timeline:
    """``facts``: the delivery explanation's (next_retry_at, gives_up_earliest, gives_up_by)."""
    moments: list[tuple[datetime, str, str]] = []
    for event in history:
        found = _mark(event)
        if found is not None:
            moments.append((event.time, *found))
    if facts.get("next_retry_at"):
        due = parse_time(facts["next_retry_at"])
        moments.append((due, "next", f"{said_time(due)}: next retry, attempt {facts.get('next_attempt')}"))
    earliest = parse_time(facts["gives_up_earliest"]) if facts.get("gives_up_earliest") else None
    latest = parse_time(facts["gives_up_by"]) if facts.get("gives_up_by") else None
    times = [moment for moment, _, _ in moments] + [t for t in (earliest, latest) if t is not None]
    first, last = min(times), max(times)
    span = max((last - first).total_seconds(), 1e-6)

    def x(moment: datetime) -> int:
        return LEFT + round((moment - first).total_seconds() / span * (WIDTH - LEFT - RIGHT))

    marks = [Mark(kind, x(moment), title) for moment, kind, title in moments]
    window = None
    if earliest is not None and latest is not None:
        window = (x(earliest), x(latest))
        marks.append(Mark("gives-up", x(latest), f"gives up by {said_time(latest)} if every retry fails "
                                                 f"(as early as {said_time(earliest)})"))
    return Timeline(marks, window, said_time(first), said_time(last))
