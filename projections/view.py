"""What a view is: a pure fold over one stream's events and the rows it keeps.

Every row of a view is owned by exactly one stream: the stream ``<category>:<key>`` owns the
rows whose partition key is ``<key>``. The stream's first row (the *head*) carries the last
stream version the view applied; the view store writes every change conditionally on it, which
makes live processing, retries and replays converge on the same rows.

Views are pure: ``apply(state, event) -> state`` never does I/O or reads a clock.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from events.envelope import RecordedEvent
from events.sharding import ShardedKey

S = TypeVar("S")
R = TypeVar("R", bound="ViewRow")
Row = dict[str, Any]
HEAD_SORT_KEY = "#"  # the head row of multi-row views; queries never return it
STREAM_ATTR, VERSION_ATTR = "stream_id", "stream_version"  # every row's owner and the version it reflects
ROW_KEYS_ATTR = "row_keys"  # a multi-row head's list of its stream's other rows (their sort keys)
ROW_KEYS_MAX_BYTES = 64 * 1024  # a longer list is not kept: the head stays far below DynamoDB's 400 KB item


STAMP = {"stamp": True}  # field metadata: the owning stream's stamp, read from the table, never folded
NOT_STORED = {"stored": False}  # field metadata: kept by the fold or the reader, never a stored attribute


@dataclass(frozen=True, kw_only=True)
class ViewRow:
    """A view's one row type: what its fold keeps, what its table stores and what its queries return.

    ``to_row()`` is the stored attributes: every field (nested dataclasses as maps, tuples as lists)
    plus the ``derived`` properties a table indexes or expires on (e.g. ``unread``, ``expires_at``),
    which are computed, never folded. ``from_row()`` is its inverse and also reads a whole stored
    item: derived attributes are recomputed, the owning stream's stamp (``stream_id``,
    ``stream_version``, never compared) is kept, and attributes the type does not know go to
    ``extra``. ``to_dict()`` is the JSON the CLI and the HTTP API show.
    """

    stream_id: str | None = field(default=None, compare=False, repr=False, metadata=STAMP)
    stream_version: int | None = field(default=None, compare=False, repr=False, metadata=STAMP)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False, metadata=NOT_STORED)

    derived: ClassVar[tuple[str, ...]] = ()
    # The write-sharded index keys among the derived attributes (events/sharding.py): compared by
    # their bare value when a rebuild is proven equal (the bucket is how a row is stored, not what
    # it means), and each checked against template.yaml's index.
    sharded: ClassVar[tuple[ShardedKey, ...]] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        hints = _hints(cls)
        readable = {f.name for f in dataclasses.fields(cls) if f.metadata.get("stored", True)}
        known = {name: _decode(hints[name], value) for name, value in row.items() if name in readable}
        extra = {name: value for name, value in row.items() if name not in readable and name not in cls.derived}
        return cls(**known, extra=extra)

    def to_row(self) -> Row:
        return {name: _plain(getattr(self, name)) for name in _row_names(type(self))}

    def to_dict(self) -> dict[str, Any]:
        return {**self.to_row(), "stream_id": self.stream_id, "stream_version": self.stream_version, **self.extra}

    def attributes(self, *keys: str) -> Row:
        """The stored attributes without the key attributes: what ``View.rows`` maps a sort key to."""
        return {name: value for name, value in self.to_row().items() if name not in keys}


# A rebuild turns every folded state into rows: the field names of each class are looked up once,
# not with dataclasses.fields() for every row and nested value (that was half of the fold's CPU).
_ROW_NAMES: dict[type, tuple[str, ...]] = {}
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}
_SCALARS = (str, int, float, bool, type(None))


def _row_names(cls: type[ViewRow]) -> tuple[str, ...]:
    """What ``to_row`` stores: the stored fields that are not stamps, then the derived attributes."""
    names = _ROW_NAMES.get(cls)
    if names is None:
        names = _ROW_NAMES[cls] = (*(f.name for f in dataclasses.fields(cls)
                                     if f.metadata.get("stored", True) and not f.metadata.get("stamp")),
                                   *cls.derived)
    return names


def _field_names(kind: type) -> tuple[str, ...] | None:
    """The fields of a dataclass type; None for any other type."""
    if kind not in _FIELD_NAMES:
        _FIELD_NAMES[kind] = (tuple(f.name for f in dataclasses.fields(kind))
                              if dataclasses.is_dataclass(kind) else None)
    return _FIELD_NAMES[kind]


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _field_names(kind)
    if names is not None:  # a dataclass instance (a dataclass *type* has type ``type``: not here)
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _decode(hint: Any, value: Any) -> Any:
    """A stored value as the field's type: nested dataclasses from maps, tuples from lists, ints."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in args if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(_decode(args[0], v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        nested = _hints(hint)
        return hint(**{f.name: _decode(nested[f.name], value[f.name])
                       for f in dataclasses.fields(hint) if f.name in value})
    if hint is int and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if hint is bool:
        return bool(value)
    return value


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
    state was loaded; ``load`` starts with none. ``measures(before, after)`` counts what one event
    meant in the domain (e.g. errors opened), for the projector's metrics: a duplicate is skipped
    and so counts nothing.
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
    extra_tables: tuple[str, ...] = ()  # the table families ``extras`` writes into
    measures: Callable[[S, S], Mapping[str, int]] = field(default=lambda before, after: {})
    # Its rows keep personal values (events.personal): an erasure refolds its streams' rows.
    personal_data: bool = False

    @property
    def families(self) -> tuple[str, ...]:
        """Every table family this view writes: a rebuild copies them together."""
        return (self.table, *self.extra_tables)

    def fold(self, key: str, events: list[RecordedEvent], state: S | None = None) -> S:
        """A straight fold: what replay and the property tests compare live processing with."""
        current = self.initial(key) if state is None else state
        for event in events:
            current = self.apply(current, event)
        return current


def single_row_view(*, name: str, table: str, category: str, key_attr: str, row_type: type[R],
                    initial: Callable[[str], R], apply: Callable[[R, RecordedEvent], R],
                    shown: Callable[[R], bool], extras: Callable[[R], tuple[Extra, ...]] = lambda state: (),
                    extra_tables: tuple[str, ...] = ()) -> View[R]:
    """A view with one row per stream (no sort key) whose state *is* its row type: the row is the
    state's stored attributes once ``shown`` (nothing before: a read of an alert never raised
    writes nothing), and a stored row loads back into the state with its key."""

    def rows(state: R) -> Mapping[str | None, Row]:
        return {None: state.attributes(key_attr)} if shown(state) else {}

    def load(key: str, stored: Mapping[str | None, Row]) -> R:
        row = stored.get(None)
        return initial(key) if row is None else row_type.from_row({**row, key_attr: key})

    return View(name=name, table=table, category=category, key_attr=key_attr, sort_attr=None, initial=initial,
                apply=apply, rows=rows, load=load, extras=extras, extra_tables=extra_tables)


def stream_key(stream: str) -> str:
    return stream.split(":", 1)[1]


def stored_row(view: View[Any], key: str, sort_key: str | None, row: Row, stream: str, version: int) -> Row:
    """A row as the view table holds it: its keys, its attributes, and the owning stream's stamp."""
    keys = {view.key_attr: key} if view.sort_attr is None else {view.key_attr: key, view.sort_attr: sort_key}
    return {**keys, **row, STREAM_ATTR: stream, VERSION_ATTR: version}


def head_row(view: View[Any], key: str, stream: str, version: int, sort_keys: Iterable[str | None] = ()) -> Row:
    """The head row of a multi-row view: the stream's applied version, and the sort keys of its
    other rows (``ROW_KEYS_ATTR``), written with them, so a projector fetches a batch's rows by key
    (BatchGetItem, a request per 100 rows of many streams) instead of a Query per stream. A list
    longer than ``ROW_KEYS_MAX_BYTES`` is left out, and that stream's rows are queried."""
    listed = sorted(str(sort_key) for sort_key in sort_keys)
    kept = {ROW_KEYS_ATTR: listed} if sum(len(k.encode("utf-8")) for k in listed) <= ROW_KEYS_MAX_BYTES else {}
    return stored_row(view, key, HEAD_SORT_KEY, kept, stream, version)


def full_rows(view: View[S], stream: str, version: int, state: S) -> list[tuple[str, Row]]:
    """(family, row) for every row ``state`` stands for: what live processing writes when it applies
    a stream's whole history in one batch onto no rows, and so what a rebuild writes."""
    key = stream_key(stream)
    new_rows = view.rows(state)
    if view.sort_attr is None and None not in new_rows:
        return []  # nothing to show yet (e.g. a read of an alert never raised): live writes nothing
    written: list[tuple[str, Row]] = []
    if view.sort_attr is not None:
        written.append((view.table, head_row(view, key, stream, version, new_rows)))
    written.extend((view.table, stored_row(view, key, sort_key, row, stream, version))
                   for sort_key, row in new_rows.items())
    written.extend((extra.table, extra.item) for extra in view.extras(state))
    return written
