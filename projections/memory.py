"""The view rows in memory: the ``ViewRows`` port for unit tests, with the DynamoDB store's semantics.

What a save writes (``change_of``) and what stored rows stand for (``loaded_rows``, ``loaded_single``)
are the port's functions, shared with ``projections.view_store``; values are kept as DynamoDB
gives them back (no None attributes, integral numbers as ints, tuples as lists). Every save is
one atomic step behind one lock, guarded by the version that was loaded, as DynamoDB's conditional
writes are; a change never stops half way here, so no head is ever left unfinished.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from projections.ports import (
    PENDING_VERSION_ATTR,
    Change,
    Loaded,
    PendingSave,
    Put,
    StaleView,
    batchable,
    change_of,
    loaded_rows,
    loaded_single,
    without_none,
)
from projections.view import VERSION_ATTR, Row, View

S = TypeVar("S")
Key = tuple[Any, ...]


class InMemoryViewRows:
    """Rows by table family and key; ``keys`` names each family's key attributes (partition key,
    then sort key), as template.yaml defines them (``processors.local.tables.view_keys()``)."""

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self._keys = {family: tuple(attrs) for family, attrs in keys.items()}
        self._lock = threading.RLock()
        self.tables: dict[str, dict[Key, Row]] = {family: {} for family in self._keys}

    def rows(self, family: str) -> list[Row]:
        """Every stored row of a family (a test's scan), in key order."""
        with self._lock:
            table = self.tables[family]
            return [copy.deepcopy(table[key]) for key in sorted(table, key=repr)]

    # ----------------------------------------------------------------- port

    def load(self, view: View[S], key: str) -> Loaded[S]:
        with self._lock:
            stored = [copy.deepcopy(row) for k, row in self.tables[view.table].items() if k[0] == key]
        if view.sort_attr is None:
            return loaded_single(view, key, stored[0] if stored else None)
        return loaded_rows(view, key, stored)

    def load_many(self, wanted: Mapping[View[Any], Sequence[str]]) -> dict[tuple[str, str], Loaded[Any]]:
        return {(view.name, key): self.load(view, key) for view, keys in wanted.items() for key in keys}

    def save(self, view: View[S], stream: str, key: str, loaded: Loaded[S], state: S, version: int) -> int:
        change = change_of(PendingSave(view, stream, key, loaded, state, version))
        if change is None:
            return 0
        with self._lock:
            self._check(change)
            self._put(change.guarded)
            for write in change.rest:
                if isinstance(write, Put):
                    self._put(write)
                else:
                    self.tables[write.family].pop(self._key(write.family, write.key), None)
        return len(change)

    def save_grouped(self, saves: Sequence[PendingSave[Any]]) -> dict[str, int | Exception]:
        return {save.stream: self._attempt(save) for save in saves}

    def batchable(self, save: PendingSave[Any]) -> bool:
        return batchable(save)

    def save_batched(self, saves: Sequence[PendingSave[Any]]) -> dict[str, int | Exception]:
        return {save.stream: self._attempt(save) for save in saves}

    # ----------------------------------------------------------------- rows

    def _attempt(self, save: PendingSave[Any]) -> int | Exception:
        try:
            return self.save(save.view, save.stream, save.key, save.loaded, save.state, save.version)
        except Exception as error:  # noqa: BLE001 - StaleView or a real failure, settled per stream
            return error

    def _check(self, change: Change) -> None:
        """The guarded row must still be at the version read (absent, or at 0, when that was 0)."""
        stored = self.tables[change.guarded.family].get(self._key(change.guarded.family, change.guarded.row))
        stored_version = None if stored is None else stored.get(VERSION_ATTR)
        if change.unmarked and stored is not None and PENDING_VERSION_ATTR in stored:
            raise StaleView()  # (never here: an in-memory change never stops half way)
        if change.read_version == 0 and stored_version in (None, 0):
            return
        if stored_version != change.read_version:
            raise StaleView()

    def _put(self, put: Put) -> None:
        row = {name: _as_stored(value) for name, value in without_none(put.row).items()}
        self.tables[put.family][self._key(put.family, row)] = row

    def _key(self, family: str, row: Mapping[str, Any]) -> Key:
        return tuple(_as_stored(row[attr]) for attr in self._keys[family])


def _as_stored(value: Any) -> Any:
    """A value as it comes back from DynamoDB (projections.view_store's round trip through
    Decimal): integral numbers as ints, tuples as lists, nested maps and lists alike."""
    if isinstance(value, float):
        number = Decimal(repr(value))
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, Mapping):
        return {k: _as_stored(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_stored(v) for v in value]
    return value
