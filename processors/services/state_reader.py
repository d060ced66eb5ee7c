"""A stream's current state in a view: its view row, caught up with the log.

The view row may lag the log (the projector runs asynchronously) but never runs ahead of a
version we ask for unless the stream moved on, so: take the row when it is at or before the
version wanted, fold the events after it from the log with the very same fold the projector
uses. Decisions that need state (the reactor's alert rules, the storefront count) read it
here and append at the version they read, so a concurrent change makes the append conflict.
"""

from __future__ import annotations

from typing import Any, TypeVar

from events.ports import EventLog
from projections.view import View, stream_key
from projections.ports import ViewRows

S = TypeVar("S")


def state_at(store: EventLog, views: ViewRows, view: View[S], stream: str,
             version: int | None = None) -> tuple[S, int]:
    """(state, version) right after ``version`` (None: the stream's latest event)."""
    key = stream_key(stream)
    loaded = views.load(view, key)
    usable = version is None or loaded.version <= version
    state: Any = loaded.state if usable else None
    start = loaded.version if usable else 0
    if version is not None and version <= start:
        return view.fold(key, [], state), start
    events = store.read_stream(stream, start + 1, version)
    folded = view.fold(key, events, state)
    return folded, events[-1].version if events else start
