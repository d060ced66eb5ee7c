"""The view tables: load one stream's rows, write the change conditionally on the version read.

The only module that writes view tables. A write never moves a stream's rows backwards: the head
row's ``stream_version`` must still be the version that was read, or the write is refused and
the caller reloads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from projections.view import HEAD_SORT_KEY, STREAM_ATTR, VERSION_ATTR, Row, View, head_row, stored_row

S = TypeVar("S")
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()
PARTIQL_BATCH = 25  # BatchExecuteStatement's limit
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STALE_CODES = {"ConditionalCheckFailed", "DuplicateItem"}


class StaleView(Exception):
    """The rows moved on since they were loaded (a concurrent or retried invocation)."""


def to_attribute(value: Any) -> dict[str, Any]:
    attribute: dict[str, Any] = _serializer.serialize(_for_dynamodb(value))  # boto3 is untyped
    return attribute


def _for_dynamodb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _for_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_for_dynamodb(v) for v in value]
    return value


def _from_dynamodb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamodb(v) for v in value]
    return value


def from_item(item: Mapping[str, Any]) -> Row:
    """A plain row (ints, floats, str, lists, dicts) from a low-level item."""
    return {name: _from_dynamodb(_deserializer.deserialize(value)) for name, value in item.items()}


def to_item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_attribute(value) for name, value in row.items() if value is not None}


@dataclass(frozen=True)
class Loaded(Generic[S]):
    state: S
    version: int
    rows: Mapping[str | None, Row]


@dataclass(frozen=True)
class PendingSave(Generic[S]):
    """One stream's folded state, to be written at ``version`` on top of what was ``loaded``."""

    view: View[S]
    stream: str
    key: str
    loaded: Loaded[S]
    state: S
    version: int


class ViewStore:
    """Rows of every view, by table family -> physical table name (the active versions)."""

    def __init__(self, client: Any, tables: Mapping[str, str]) -> None:
        self._client = client
        self._tables = tables

    def table(self, family: str) -> str:
        return self._tables[family]

    def load(self, view: View[S], key: str) -> Loaded[S]:
        table = self._tables[view.table]
        if view.sort_attr is None:
            item = self._client.get_item(
                TableName=table, Key={view.key_attr: {"S": key}}, ConsistentRead=True
            ).get("Item")
            return self._single(view, key, item)
        stored_rows: dict[str | None, Row] = {}
        version = 0
        for item in self._query_all(table, view.key_attr, key):
            row = from_item(item)
            sort_key = row[view.sort_attr]
            if sort_key == HEAD_SORT_KEY:
                version = int(row[VERSION_ATTR])
            else:
                stored_rows[sort_key] = _strip(view, row)
        return Loaded(view.load(key, stored_rows), version, stored_rows)

    def load_many(self, view: View[S], keys: list[str]) -> dict[str, Loaded[S]]:
        """Load many single-row streams with BatchGetItem: one request per 100 keys, not one each."""
        if view.sort_attr is not None:
            return {key: self.load(view, key) for key in keys}
        table = self._tables[view.table]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            request = {table: {"Keys": [{view.key_attr: {"S": k}} for k in keys[start:start + 100]],
                               "ConsistentRead": True}}
            while request:
                page = self._client.batch_get_item(RequestItems=request)
                for item in page["Responses"].get(table, []):
                    found[item[view.key_attr]["S"]] = item
                request = page.get("UnprocessedKeys") or {}
        return {key: self._single(view, key, found.get(key)) for key in keys}

    @staticmethod
    def _single(view: View[S], key: str, item: dict[str, Any] | None) -> Loaded[S]:
        stored: dict[str | None, Row] = {} if item is None else {None: _strip(view, from_item(item))}
        version = 0 if item is None else int(item[VERSION_ATTR]["N"])
        return Loaded(view.load(key, stored), version, stored)

    def _query_all(self, table: str, key_attr: str, key: str) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": key_attr},
            "ExpressionAttributeValues": {":k": {"S": key}},
            "ConsistentRead": True,
        }
        items = []
        while True:
            page = self._client.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, view: View[S], stream: str, key: str, loaded: Loaded[S], state: S, version: int) -> int:
        """Write what changed between ``loaded`` and ``state`` at ``version``; returns items written."""
        writes = self._writes(PendingSave(view, stream, key, loaded, state, version))
        if writes:
            self._write(writes)
        return len(writes)

    def _writes(self, save: PendingSave[Any]) -> list[dict[str, Any]]:
        """The guarded writes of one stream: its head (or single row) conditional on the version read."""
        view, key, loaded = save.view, save.key, save.loaded
        table = self._tables[view.table]
        new_rows = view.rows(save.state)
        guard = self._guard(view, loaded.version)
        writes: list[dict[str, Any]] = []
        if view.sort_attr is None:
            row = new_rows.get(None)
            if row is None:
                return []
            item = stored_row(view, key, None, row, save.stream, save.version)
            writes.append({"Put": {"TableName": table, "Item": to_item(item), **guard}})
        else:
            head = head_row(view, key, save.stream, save.version)
            writes.append({"Put": {"TableName": table, "Item": to_item(head), **guard}})
            for sort_key, row in new_rows.items():
                if loaded.rows.get(sort_key) != _without_none(row):
                    item = stored_row(view, key, sort_key, row, save.stream, save.version)
                    writes.append({"Put": {"TableName": table, "Item": to_item(item)}})
            for sort_key in loaded.rows.keys() - new_rows.keys():
                writes.append({"Delete": {"TableName": table, "Key": {
                    view.key_attr: {"S": key}, view.sort_attr: to_attribute(sort_key)}}})
        for extra in view.extras(save.state):
            writes.append({"Put": {"TableName": self._tables[extra.table], "Item": to_item(extra.item)}})
        return writes

    def save_grouped(self, saves: Sequence[PendingSave[Any]]) -> dict[str, int | Exception]:
        """Write many streams' multi-item changes in shared transactions of up to 100 items.

        They are transactions anyway (a head and its rows land together); sharing one costs nothing
        more per item and saves a request per stream. Should one stream's guard fail, that stream is
        stale and the others of its group are written again on their own.
        """
        planned = [(save, self._writes(save)) for save in saves]
        outcome: dict[str, int | Exception] = {save.stream: 0 for save, writes in planned if not writes}
        groups: list[list[tuple[PendingSave[Any], list[dict[str, Any]]]]] = [[]]
        for save, writes in planned:
            if not writes:
                continue
            if len(writes) > 100 - sum(len(w) for _, w in groups[-1]):
                groups.append([])
            groups[-1].append((save, writes))
        for group in filter(None, groups):
            outcome.update(self._transact_group(group))
        return outcome

    def _transact_group(self, group: list[tuple[PendingSave[Any], list[dict[str, Any]]]]) -> dict[str, int | Exception]:
        if len(group) == 1 or sum(len(w) for _, w in group) > 100:
            return {save.stream: self._attempt(writes) for save, writes in group}
        try:
            self._client.transact_write_items(TransactItems=[w for _, writes in group for w in writes])
            return {save.stream: len(writes) for save, writes in group}
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                return {save.stream: error for save, _ in group}
            reasons = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
        outcome: dict[str, int | Exception] = {}
        position = 0
        for save, writes in group:
            failed = "ConditionalCheckFailed" in reasons[position:position + len(writes)]
            outcome[save.stream] = StaleView() if failed else self._attempt(writes)
            position += len(writes)
        return outcome

    def _attempt(self, writes: list[dict[str, Any]]) -> int | Exception:
        try:
            self._write(writes)
            return len(writes)
        except Exception as error:  # noqa: BLE001 - StaleView or a real failure, settled per stream
            return error

    def batchable(self, save: PendingSave[Any]) -> bool:
        """A single-row view's one conditional write, with nothing else that must land with it."""
        view = save.view
        if view.sort_attr is not None or None not in view.rows(save.state) or view.extras(save.state):
            return False
        names = (*view.rows(save.state)[None], *save.loaded.rows.get(None, {}), view.key_attr)
        return all(_PLAIN_NAME.match(name) for name in names)  # spelt into the statement: no quoting games

    def save_batched(self, saves: Sequence[PendingSave[Any]]) -> dict[str, int | Exception]:
        """Write many streams' single rows with BatchExecuteStatement, 25 conditional statements a call.

        Each statement keeps its own condition (INSERT fails on an existing row, UPDATE requires the
        version that was read), so this is the same guarded write as ``save``, in a twenty-fifth of
        the requests and at the same cost per row (not a transaction). Per stream: items written,
        ``StaleView`` when its rows moved on, or the error that failed it.
        """
        outcome: dict[str, int | Exception] = {}
        for start in range(0, len(saves), PARTIQL_BATCH):
            chunk = saves[start:start + PARTIQL_BATCH]
            try:
                responses = self._client.batch_execute_statement(
                    Statements=[self._statement(save) for save in chunk])["Responses"]
            except ClientError as error:
                outcome.update({save.stream: error for save in chunk})
                continue
            for save, response in zip(chunk, responses, strict=True):  # one response per statement, in order
                failure = response.get("Error")
                if failure is None:
                    outcome[save.stream] = 1
                elif failure.get("Code") in _STALE_CODES:
                    outcome[save.stream] = StaleView()
                else:
                    outcome[save.stream] = RuntimeError(f"{failure.get('Code')}: {failure.get('Message')}")
        return outcome

    def _statement(self, save: PendingSave[Any]) -> dict[str, Any]:
        view, table = save.view, self._tables[save.view.table]
        item = to_item(stored_row(view, save.key, None, view.rows(save.state)[None], save.stream, save.version))
        if save.loaded.version == 0:  # the row must not exist yet: INSERT refuses an existing key
            names = list(item)
            values = ", ".join(f"'{name}': ?" for name in names)
            return {"Statement": f'INSERT INTO "{table}" VALUE {{{values}}}', "Parameters": [item[n] for n in names]}
        names = [name for name in item if name != view.key_attr]
        removed = [name for name in save.loaded.rows.get(None, {}) if name not in item]  # a put would drop them
        statement = (f'UPDATE "{table}" ' + " ".join(f'SET "{name}"=?' for name in names)
                     + "".join(f' REMOVE "{name}"' for name in removed)
                     + f' WHERE "{view.key_attr}"=? AND "{VERSION_ATTR}"=?')
        return {"Statement": statement,
                "Parameters": [*(item[n] for n in names), {"S": save.key}, {"N": str(save.loaded.version)}]}

    @staticmethod
    def _guard(view: View[Any], read_version: int) -> dict[str, Any]:
        if read_version == 0:
            return {"ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": view.key_attr}}
        return {
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": VERSION_ATTR},
            "ExpressionAttributeValues": {":v": {"N": str(read_version)}},
        }

    def _write(self, writes: list[dict[str, Any]]) -> None:
        try:
            if len(writes) == 1:
                self._client.put_item(**writes[0]["Put"])
            else:
                for start in range(0, len(writes), 100):
                    self._client.transact_write_items(TransactItems=writes[start:start + 100])
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                raise StaleView() from error
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                    raise StaleView() from error
            raise


def _strip(view: View[Any], row: Row) -> Row:
    return {
        name: value for name, value in row.items()
        if name not in (view.key_attr, view.sort_attr, STREAM_ATTR, VERSION_ATTR)
    }


def _without_none(row: Row) -> Row:
    return {name: value for name, value in row.items() if value is not None}
