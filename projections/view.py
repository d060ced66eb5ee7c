"""What a view is: a pure fold over one stream's events and the rows it keeps.

Every row of a view is owned by exactly one stream: the stream ``<category>:<key>`` owns the
rows whose partition key is ``<key>``. The stream's first row (the *head*) carries the last
stream version the view applied; the view store writes every change conditionally on it, which
makes live processing, retries and replays converge on the same rows.

Views are pure: ``apply(state, event) -> state`` never does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from events.envelope import RecordedEvent

S = TypeVar("S")
Row = dict[str, Any]
HEAD_SORT_KEY = "#"  # the head row of multi-row views; queries never return it


@dataclass(frozen=True, slots=True)
class Extra:
    """An insert-only row a fold produced in another table (e.g. a return in the returns history).

    Keyed by the event that produced it, so writing it twice writes the same item.
    """

    table: str
    item: Row


@dataclass(frozen=True)
class View(Generic[S]):
    """One read model.

    ``rows(state)`` maps sort key -> row attributes (sort key ``None`` for a single-row view);
    ``load(key, rows)`` is its inverse. ``extras(state)`` lists insert-only rows produced since the
    state was loaded; ``load`` starts with none.
    """

    name: str
    table: str  # table family in template.yaml (the active version is configuration)
    category: str  # the stream category it folds
    key_attr: str
    sort_attr: str | None
    initial: Callable[[str], S]
    apply: Callable[[S, RecordedEvent], S]
    rows: Callable[[S], Mapping[str | None, Row]]
    load: Callable[[str, Mapping[str | None, Row]], S]
    extras: Callable[[S], tuple[Extra, ...]] = field(default=lambda state: ())

    def fold(self, key: str, events: list[RecordedEvent], state: S | None = None) -> S:
        """A straight fold: what replay and the property tests compare live processing with."""
        current = self.initial(key) if state is None else state
        for event in events:
            current = self.apply(current, event)
        return current


def stream_key(stream: str) -> str:
    return stream.split(":", 1)[1]
