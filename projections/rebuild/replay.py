"""Replay: fold whole streams read from the log into the rows a view table should hold. Pure.

The same folds live processing uses (``View.fold``), and the same row shapes it writes
(``full_rows``), so a rebuilt table is what live processing would have written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from events.chain import group_by_stream
from events.envelope import RecordedEvent
from events.errors import DynafoldError
from events.items import Item, from_item
from projections.view import Row, View, full_rows, stream_key


@dataclass(frozen=True, slots=True)
class StreamRows:
    stream: str
    events: int
    version: int  # the last version folded
    rows: list[tuple[str, Row]]  # (table family, row)
    error: str | None = None  # an event that no longer decodes: the stream is not folded


def replay(items: Iterable[Item], views: Mapping[str, View[Any]],
           reveal: Callable[[RecordedEvent], RecordedEvent] | None = None) -> Iterator[StreamRows]:
    """Rows of every stream among ``items`` (each stream's items contiguous, in version order) whose
    category one of ``views`` (category -> view) folds; other streams are counted with no rows.
    A view that keeps personal values folds its events as ``reveal`` shows them (as live processing
    does: the values, or ``[erased]``)."""
    for stream, group in group_by_stream(items):
        version = int(group[-1]["version"]["N"])
        view = views.get(stream.split(":", 1)[0])
        if view is None:
            yield StreamRows(stream, len(group), version, [])
            continue
        try:
            events = [from_item(item) for item in group]
            if view.personal_data and reveal is not None:
                events = [reveal(event) for event in events]
        except (DynafoldError, ValueError) as error:
            yield StreamRows(stream, len(group), version, [], f"{type(error).__name__}: {error}")
            continue
        state = view.fold(stream_key(stream), events)
        yield StreamRows(stream, len(group), version, full_rows(view, stream, version, state))
