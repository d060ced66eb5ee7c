"""The view tables: load one stream's rows, write the change conditionally on the version read.

The only module that writes view tables. A write never moves a stream's rows backwards: the head
row's ``stream_version`` must still be the version that was read, or the write is refused and
the caller reloads.

A change bigger than one transaction (100 items) is written in steps that can stop anywhere and
be resumed: the first marks the head *unfinished* (``pending_version``, and a token naming this
write) while it keeps the version it had; each later step is conditional on the token; the last
moves the version on and clears the mark. Until then the head's version is the old one, so a
redelivery is not skipped as a duplicate; and since the rows are by then a mix of two versions,
``load`` hands out no state from them (the initial state at version 0, see ``Loaded``): the
projector folds the committed events again from the log and writes what differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from events import raw_items
from projections.ports import (
    PARTIQL_BATCH,
    PENDING_TOKEN_ATTR,
    PENDING_VERSION_ATTR,
    Change,
    Loaded,
    PendingSave,
    Put,
    StaleView,
    batchable,
    change_of,
    listed_row_keys,
    loaded_rows,
    loaded_single,
)
from projections.view import HEAD_SORT_KEY, VERSION_ATTR, Row, View, stored_row

# Loaded, PendingSave, StaleView and PARTIQL_BATCH are the port's (projections.ports); re-exported
# for the callers that import them from here.
__all__ = ["PARTIQL_BATCH", "Loaded", "PendingSave", "StaleView", "ViewStore", "from_item", "to_attribute", "to_item"]

S = TypeVar("S")
_STALE_CODES = {"ConditionalCheckFailed", "DuplicateItem"}
MAX_TRANSACTION_ITEMS = 100


# Integers of up to 38 digits are exact in DynamoDB's number context, where boto3 writes them as
# str(int); longer ones go to boto3, which refuses them (Inexact/Rounded).
_EXACT_INT = 10**38


@cache
def _boto3_types() -> tuple[Any, Any]:
    """boto3's (TypeSerializer, TypeDeserializer), imported on first use: ``boto3.dynamodb.types``
    imports the whole boto3 package (~150 ms of a cold start), which a function that imports this
    module only pays when it reads or writes rows, i.e. once its client exists anyway."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def to_attribute(value: Any) -> dict[str, Any]:
    """The low-level attribute boto3's ``TypeSerializer`` makes of ``value`` (floats as their repr's
    Decimal). The shapes rows are made of are built here directly: boto3's serializer costs ~50 us a
    row, a tenth of a rebuild's CPU; anything else (floats, Decimals, sets, bytes) goes to boto3."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -_EXACT_INT < value < _EXACT_INT:
        return {"N": str(value)}
    if kind is dict:
        return {"M": {name: to_attribute(item) for name, item in value.items()}}
    if kind is list:
        return {"L": [to_attribute(item) for item in value]}
    if value is None:
        return {"NULL": True}
    attribute: dict[str, Any] = _boto3_types()[0].serialize(_for_dynamodb(value))  # boto3 is untyped
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
    deserialize = _boto3_types()[1].deserialize
    return {name: _from_dynamodb(deserialize(value)) for name, value in item.items()}


def to_item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_attribute(value) for name, value in row.items() if value is not None}


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
            item = raw_items.call(
                self._client, "get_item", TableName=table, Key={view.key_attr: {"S": key}}, ConsistentRead=True
            ).get("Item")
            return loaded_single(view, key, None if item is None else from_item(item))
        return loaded_rows(view, key, map(from_item, self._query_all(table, view.key_attr, key)))

    def load_many(self, wanted: Mapping[View[Any], Sequence[str]]) -> dict[tuple[str, str], Loaded[Any]]:
        """Load many streams of many views with BatchGetItem (100 items a request, whatever their
        tables), not a request (or a Query) each: single rows and multi-row heads first, then the
        rows those heads list. A stream without a head has no rows (a change writes its head with
        its first rows); one whose head cannot list them (unfinished, or written before heads
        listed rows) is queried. Keyed by (view name, key)."""
        firsts = [(view, key) for view, keys in wanted.items() for key in keys]
        found = self._get_many([(view, key, None if view.sort_attr is None else HEAD_SORT_KEY)
                                for view, key in firsts])
        listed = {(view.name, key): listed_row_keys(found[(view.name, key, HEAD_SORT_KEY)])
                  for view, key in firsts if view.sort_attr is not None and (view.name, key, HEAD_SORT_KEY) in found}
        views = {view.name: view for view in wanted}
        rows_of: dict[tuple[str, str], list[Row]] = {}
        for (name, key, _), row in self._get_many([(views[name], key, sort_key) for (name, key), sort_keys
                                                    in listed.items() for sort_key in sort_keys or ()]).items():
            rows_of.setdefault((name, key), []).append(row)
        loaded: dict[tuple[str, str], Loaded[Any]] = {}
        for view, key in firsts:
            at = (view.name, key)
            if view.sort_attr is None:
                loaded[at] = loaded_single(view, key, found.get((view.name, key, None)))
            elif at in listed and listed[at] is None:
                loaded[at] = self.load(view, key)
            else:
                head = found.get((view.name, key, HEAD_SORT_KEY))
                loaded[at] = loaded_rows(view, key, [] if head is None else [head, *rows_of.get(at, [])])
        return loaded

    def _get_many(self, wanted: Sequence[tuple[View[Any], str, str | None]]) -> dict[tuple[str, str, str | None], Row]:
        """The rows at (view, key, sort key) that exist, as plain rows by (view name, key, sort key):
        consistent reads, 100 keys a request across tables, the unprocessed ones asked again."""
        views = {self._tables[view.table]: view for view, _, _ in wanted}
        found: dict[tuple[str, str, str | None], Row] = {}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {}
            for view, key, sort_key in wanted[start:start + 100]:
                item_key = {view.key_attr: {"S": key}}
                if view.sort_attr is not None:
                    item_key[view.sort_attr] = {"S": str(sort_key)}
                table = request.setdefault(self._tables[view.table], {"Keys": [], "ConsistentRead": True})
                table["Keys"].append(item_key)
            while request:
                page = raw_items.call(self._client, "batch_get_item", RequestItems=request)
                for table_name, items in page["Responses"].items():
                    view = views[table_name]
                    for row in map(from_item, items):
                        sort_key = None if view.sort_attr is None else row[view.sort_attr]
                        found[(view.name, row[view.key_attr], sort_key)] = row
                request = page.get("UnprocessedKeys") or {}
        return found

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
            page = raw_items.call(self._client, "query", **kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, view: View[S], stream: str, key: str, loaded: Loaded[S], state: S, version: int) -> int:
        """Write what changed between ``loaded`` and ``state`` at ``version``; returns items written."""
        save = PendingSave(view, stream, key, loaded, state, version)
        writes = self._writes(save)
        if writes:
            self._write_change(save, writes)
        return len(writes)

    def _write_change(self, save: PendingSave[Any], writes: list[dict[str, Any]]) -> None:
        """One stream's guarded writes (``writes[0]`` is the guarded head or row): one transaction
        when they fit, else resumable steps, the version moving only with the last of them."""
        if len(writes) <= MAX_TRANSACTION_ITEMS:
            self._write(writes)
            return
        guarded, rest = writes[0]["Put"], writes[1:]
        if save.view.sort_attr is None:  # a single row and its extras (insert-only, keyed by event):
            for start in range(0, len(rest), MAX_TRANSACTION_ITEMS):  # extras first, the row last
                self._write(rest[start:start + MAX_TRANSACTION_ITEMS])
            self._write([{"Put": guarded}])
            return
        token = {":t": {"S": uuid.uuid4().hex}}
        mine = {"ConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": PENDING_TOKEN_ATTR},
                "ExpressionAttributeValues": token}
        marked = {**guarded["Item"], VERSION_ATTR: {"N": str(save.loaded.stored_version)},
                  PENDING_VERSION_ATTR: {"N": str(save.version)}, PENDING_TOKEN_ATTR: token[":t"]}
        size = MAX_TRANSACTION_ITEMS - 1  # each step carries the head
        steps = [rest[start:start + size] for start in range(0, len(rest), size)]
        for index, step in enumerate(steps):
            if index == 0:  # the version read is still there: mark the change unfinished
                head = {**guarded, "Item": marked}
            elif index < len(steps) - 1:  # still this change's (a put, as IAM grants no ConditionCheck)
                head = {"TableName": guarded["TableName"], "Item": marked, **mine}
            else:  # done: the new version, the mark gone
                head = {"TableName": guarded["TableName"], "Item": guarded["Item"], **mine}
            self._write([{"Put": head}, *step])

    def _writes(self, save: PendingSave[Any]) -> list[dict[str, Any]]:
        """The guarded writes of one stream: its head (or single row) conditional on the version read."""
        change = change_of(save)
        if change is None:
            return []
        writes: list[dict[str, Any]] = [{"Put": {"TableName": self._tables[change.guarded.family],
                                                 "Item": to_item(change.guarded.row),
                                                 **self._guard(save.view, change)}}]
        for write in change.rest:
            if isinstance(write, Put):
                writes.append({"Put": {"TableName": self._tables[write.family], "Item": to_item(write.row)}})
            else:
                writes.append({"Delete": {"TableName": self._tables[write.family],
                                          "Key": {name: to_attribute(value) for name, value in write.key.items()}}})
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
            return {save.stream: self._attempt(save, writes) for save, writes in group}
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
            outcome[save.stream] = StaleView() if failed else self._attempt(save, writes)
            position += len(writes)
        return outcome

    def _attempt(self, save: PendingSave[Any], writes: list[dict[str, Any]]) -> int | Exception:
        try:
            self._write_change(save, writes)
            return len(writes)
        except Exception as error:  # noqa: BLE001 - StaleView or a real failure, settled per stream
            return error

    def batchable(self, save: PendingSave[Any]) -> bool:
        return batchable(save)

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
        item = to_item(stored_row(view, save.key, None, save.rows[None], save.stream, save.version))
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
    def _guard(view: View[Any], change: Change) -> dict[str, Any]:
        """The stored version is still the one read (and, see ``Change.unmarked``, no change has
        begun since)."""
        names = {"#v": VERSION_ATTR}
        at_version = "#v = :v"
        if change.unmarked:
            names["#p"] = PENDING_VERSION_ATTR
            at_version = "(#v = :v AND attribute_not_exists(#p))"
        values = {":v": {"N": str(change.read_version)}}
        if change.read_version == 0:  # no head yet, or one an unfinished first change left at version 0
            return {"ConditionExpression": f"attribute_not_exists(#k) OR {at_version}",
                    "ExpressionAttributeNames": {**names, "#k": view.key_attr}, "ExpressionAttributeValues": values}
        return {"ConditionExpression": at_version, "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values}

    def _write(self, writes: list[dict[str, Any]]) -> None:
        """One request: a put, or a transaction of up to 100 items."""
        if len(writes) > MAX_TRANSACTION_ITEMS:  # callers split first; DynamoDB would refuse the request
            raise ValueError(f"{len(writes)} writes in one transaction (at most {MAX_TRANSACTION_ITEMS})")
        try:
            if len(writes) == 1:
                self._client.put_item(**writes[0]["Put"])
            else:
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                raise StaleView() from error
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                    raise StaleView() from error
            raise
