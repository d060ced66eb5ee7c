"""The shape of an answer to a support question ("why wasn't this order sent?", "did this webhook
get delivered?", "why does Shopify show 3?"): built by pure functions from a stream's history and
the views, shown the same way by the CLI (`dynafold explain ...`), the HTTP read routes and the
console.

An answer is said in words a support engineer understands (``answer``, then ``sections`` of
sentences, in time order where time matters), and carries the same facts structured for scripts
(``facts``) and the events it was read from (``event_ids``: its provenance, linkable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any


@dataclass(frozen=True)
class Section:
    """One part of an answer: a heading and its sentences (each a whole sentence, no markup)."""

    title: str
    sentences: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "sentences": list(self.sentences)}


@dataclass(frozen=True)
class Explanation:
    """``question`` as the support engineer would ask it, about ``subject`` (the stream or id it is
    about); ``answer`` is the short answer in one or two sentences."""

    question: str
    subject: str
    answer: str
    sections: tuple[Section, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)  # JSON-ready values only
    event_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "subject": self.subject, "answer": self.answer,
                "sections": [section.to_dict() for section in self.sections], "facts": dict(self.facts),
                "event_ids": list(self.event_ids)}

    def text(self) -> str:
        """The answer as plain text for a terminal: the answer, then each section indented."""
        lines = [self.answer]
        for section in self.sections:
            lines += ["", f"{section.title}:", *(f"  {sentence}" for sentence in section.sentences)]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- saying times

def said_time(moment: datetime | str) -> str:
    """A moment as a person reads it: ``2026-01-01 10:31:05 UTC`` (the log's times are UTC)."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def said_duration(span: timedelta) -> str:
    """A length of time in its largest sensible units: ``45 s``, ``12 min``, ``2 h 5 min``, ``3 days``."""
    seconds = abs(span.total_seconds())
    if seconds < 120:
        return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{round(hours / 24)} days"


def said_relative(moment: datetime | str, now: datetime) -> str:
    """``in 12 min`` or ``12 min ago``, from ``now``."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    span = value - now
    return f"in {said_duration(span)}" if span.total_seconds() >= 0 else f"{said_duration(span)} ago"
