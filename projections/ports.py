"""The view rows as a port: what the projector, the reactor's state reads and rebuilds ask of the
view tables, whatever stores them. Pure.

``projections.view_store.ViewStore`` keeps the rows in DynamoDB; ``projections.memory.InMemoryViewRows``
in dicts for unit tests. What a save writes (``change_of``) and what loaded rows stand for
(``loaded_rows``, ``loaded_single``) are decided here, once, for both; the contract tests in
``tests/contract/`` hold them to one behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

from projections.view import (
    HEAD_SORT_KEY, ROW_KEYS_ATTR, STREAM_ATTR, VERSION_ATTR, Row, View, head_row, stored_row,
)

S = TypeVar("S")
PARTIQL_BATCH = 25  # the most saves one ``save_batched`` request carries (BatchExecuteStatement's limit)
PENDING_VERSION_ATTR, PENDING_TOKEN_ATTR = "pending_version", "pending_token"  # an unfinished change's head
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StaleView(Exception):
    """The rows moved on since they were loaded (a concurrent or retried invocation)."""


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """A stream's stored rows, the state they stand for and the version it reflects.

    ``head_version`` is what the head row says (what a write must find there); it differs from
    ``version`` only while a multi-transaction change is unfinished: then the rows are a mix of
    two versions and stand for no state, so ``state`` is the initial one at ``version`` 0."""

    state: S
    version: int
    rows: Mapping[str | None, Row]
    head_version: int | None = None

    @property
    def stored_version(self) -> int:
        return self.version if self.head_version is None else self.head_version

    @property
    def unfinished(self) -> bool:
        return self.head_version is not None and self.head_version != self.version

    @property
    def marked(self) -> bool:
        """The head carried an unfinished change's mark (even one that began at version 0)."""
        return self.head_version is not None


@dataclass(frozen=True)
class PendingSave(Generic[S]):
    """One stream's folded state, to be written at ``version`` on top of what was ``loaded``."""

    view: View[S]
    stream: str
    key: str
    loaded: Loaded[S]
    state: S
    version: int

    @cached_property
    def rows(self) -> Mapping[str | None, Row]:
        """``view.rows(state)``, made once: deciding how to write a save and writing it both ask."""
        return self.view.rows(self.state)


class ViewRows(Protocol):
    """One stream's rows of a view: loaded together, written conditionally on the version read."""

    def load(self, view: View[S], key: str) -> Loaded[S]: ...

    def load_many(self, wanted: Mapping[View[Any], Sequence[str]]) -> dict[tuple[str, str], Loaded[Any]]:
        """Many streams' rows of many views at once, by (view name, key): in bulk, single rows by
        key, a multi-row stream's by the keys its head lists (so they may be read after its head:
        see ``Change.unmarked``)."""
        ...

    def save(self, view: View[S], stream: str, key: str, loaded: Loaded[S], state: S, version: int) -> int:
        """Write what changed between ``loaded`` and ``state`` at ``version``, unless the stored
        version moved on since ``loaded`` (``StaleView``); returns the items written."""
        ...

    def save_grouped(self, saves: Sequence[PendingSave[Any]]) -> dict[str, int | Exception]:
        """Many streams' changes: per stream, items written, ``StaleView`` or the error that failed it."""
        ...

    def batchable(self, save: PendingSave[Any]) -> bool:
        """Whether ``save_batched`` may write this save (one single row and nothing else)."""
        ...

    def save_batched(self, saves: Sequence[PendingSave[Any]]) -> dict[str, int | Exception]:
        """Batchable saves, ``PARTIQL_BATCH`` a request: per stream as ``save_grouped``."""
        ...


# ----------------------------------------------------------------------------- loading

def strip(view: View[Any], row: Row) -> Row:
    """A stored row without its keys and its owner's stamp: what the view's ``load`` reads."""
    return {
        name: value for name, value in row.items()
        if name not in (view.key_attr, view.sort_attr, STREAM_ATTR, VERSION_ATTR)
    }


def without_none(row: Row) -> Row:
    """A row as stored: a None attribute is not stored at all."""
    return {name: value for name, value in row.items() if value is not None}


def loaded_single(view: View[S], key: str, row: Row | None) -> Loaded[S]:
    """What a single-row view's stored row (None: none yet) stands for."""
    stored: dict[str | None, Row] = {} if row is None else {None: strip(view, row)}
    version = 0 if row is None else int(row[VERSION_ATTR])
    return Loaded(view.load(key, stored), version, stored)


def listed_row_keys(head: Row) -> list[str] | None:
    """The sort keys of a stream's rows, as its head lists them; None when the head cannot say:
    an unfinished change's (its rows are in flux), or one written before heads listed rows."""
    listed = head.get(ROW_KEYS_ATTR)
    if PENDING_VERSION_ATTR in head or not isinstance(listed, list):
        return None
    return [str(sort_key) for sort_key in listed]


def loaded_rows(view: View[S], key: str, rows: Iterable[Row]) -> Loaded[S]:
    """What a multi-row view's stored rows (its head among them) stand for; an unfinished change's
    rows (a mix of two versions) stand for none: the initial state at version 0."""
    stored_rows: dict[str | None, Row] = {}
    version, unfinished = 0, False
    for row in rows:
        sort_key = row[view.sort_attr] if view.sort_attr else None
        if sort_key == HEAD_SORT_KEY:
            version, unfinished = int(row[VERSION_ATTR]), PENDING_VERSION_ATTR in row
        else:
            stored_rows[sort_key] = strip(view, row)
    if unfinished:
        return Loaded(view.initial(key), 0, stored_rows, head_version=version)
    return Loaded(view.load(key, stored_rows), version, stored_rows)


# ----------------------------------------------------------------------------- saving

@dataclass(frozen=True)
class Put:
    family: str
    row: Row  # None attributes included: a store leaves them out


@dataclass(frozen=True)
class Delete:
    family: str
    key: Row  # the key attributes of the row to remove


@dataclass(frozen=True)
class Change:
    """One stream's save: ``guarded`` (its head, or its single row) is written only if the stored
    version is still ``read_version``; ``rest`` (its other rows, rows gone, extras) lands with it.

    ``unmarked``: the head must also carry no unfinished change's mark. A multi-row stream's rows
    may be read after its head (``ViewRows.load_many``); a change that began in between marks the
    head before it touches a row, so a save folded from such a read is refused and reloads."""

    guarded: Put
    read_version: int
    rest: tuple[Put | Delete, ...]
    unmarked: bool = False

    def __len__(self) -> int:
        return 1 + len(self.rest)


def change_of(save: PendingSave[Any]) -> Change | None:
    """The writes of ``save``; None when there is nothing to show (a single-row view with no row)."""
    view, key, loaded = save.view, save.key, save.loaded
    new_rows = save.rows
    rest: list[Put | Delete] = []
    if view.sort_attr is None:
        row = new_rows.get(None)
        if row is None:
            return None
        guarded = Put(view.table, stored_row(view, key, None, row, save.stream, save.version))
    else:
        guarded = Put(view.table, head_row(view, key, save.stream, save.version, new_rows))
        for sort_key, row in new_rows.items():
            if loaded.rows.get(sort_key) != without_none(row):
                rest.append(Put(view.table, stored_row(view, key, sort_key, row, save.stream, save.version)))
        for sort_key in loaded.rows.keys() - new_rows.keys():
            rest.append(Delete(view.table, {view.key_attr: key, view.sort_attr: sort_key}))
    rest.extend(Put(extra.table, extra.item) for extra in view.extras(save.state))
    return Change(guarded, loaded.stored_version, tuple(rest),
                  unmarked=view.sort_attr is not None and not loaded.marked)


def batchable(save: PendingSave[Any]) -> bool:
    """A single-row view's one conditional write, with nothing else that must land with it, whose
    attribute names are plain (a PartiQL statement spells them: no quoting games)."""
    view = save.view
    if view.sort_attr is not None or None not in save.rows or view.extras(save.state):
        return False
    names = (*save.rows[None], *save.loaded.rows.get(None, {}), view.key_attr)
    return all(_PLAIN_NAME.match(name) for name in names)
