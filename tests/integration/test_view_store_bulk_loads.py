"""ViewStore.load_many on DynamoDB: a multi-row stream's rows read by the keys its head lists, and
what a head that cannot list them, a listed row gone, or a change begun between the reads do."""

from __future__ import annotations

from typing import Any

import pytest

from events.envelope import NewEvent
from events.memory import InMemoryEventLog
from processors.local.tables import local_tables
from projections.pending_errors.fold import ORDER_ROW, PendingErrorsProjection
from projections.ports import PENDING_TOKEN_ATTR, PENDING_VERSION_ATTR, PendingSave, StaleView
from projections.view import HEAD_SORT_KEY, ROW_KEYS_ATTR
from projections.view_store import ViewStore

VIEW = PendingErrorsProjection


def _validated(order: str, *hashes: str) -> NewEvent:
    return NewEvent("dynafold.orders.validated.v1", {"order_id": order, "order_number": f"SO-{order}", "errors": [
        {"error_hash": h, "rule": "r", "message": f"m {h}"} for h in hashes]})


def _saved(rows: ViewStore, order: str, *validations: tuple[str, ...]) -> Any:
    """The order's validations projected one at a time; the events, for folding."""
    log = InMemoryEventLog()
    log.append(f"order:{order}", [_validated(order, *hashes) for hashes in validations])
    events = log.read_stream(f"order:{order}")
    for version in range(1, len(events) + 1):
        loaded = rows.load(VIEW, order)
        state = VIEW.fold(order, events[loaded.version:version], loaded.state)
        rows.save(VIEW, f"order:{order}", order, loaded, state, version)
    return events


class Calls:
    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.dynamodb.*", lambda model, **_: self.names.append(model.name))


@pytest.fixture
def setup(local_dynamo: Any) -> tuple[Any, ViewStore, str]:
    client = local_dynamo.new_client()
    tables = local_tables("test-", versions={}).views
    return client, ViewStore(client, tables), tables[VIEW.table]


def _head_key(order: str) -> dict[str, Any]:
    return {"order_id": {"S": order}, "error_hash": {"S": HEAD_SORT_KEY}}


def test_a_head_lists_its_rows_and_they_load_by_key(setup: tuple[Any, ViewStore, str]) -> None:
    client, rows, table = setup
    _saved(rows, "o1", ("a", "b"), ("b", "c"))
    head = client.get_item(TableName=table, Key=_head_key("o1"), ConsistentRead=True)["Item"]
    assert head[ROW_KEYS_ATTR] == {"L": [{"S": ORDER_ROW}, {"S": "b"}, {"S": "c"}]}
    calls = Calls(client)
    assert rows.load_many({VIEW: ["o1"]})[(VIEW.name, "o1")] == rows.load(VIEW, "o1")
    assert calls.names[:2] == ["BatchGetItem", "BatchGetItem"]  # the head, then the rows it lists


def test_a_head_written_before_heads_listed_rows_is_queried(setup: tuple[Any, ViewStore, str]) -> None:
    client, rows, table = setup
    _saved(rows, "o1", ("a", "b"))
    client.update_item(TableName=table, Key=_head_key("o1"), UpdateExpression="REMOVE #r",
                       ExpressionAttributeNames={"#r": ROW_KEYS_ATTR})
    calls = Calls(client)
    loaded = rows.load_many({VIEW: ["o1"]})[(VIEW.name, "o1")]
    assert "Query" in calls.names and sorted(k for k in loaded.rows if k) == [ORDER_ROW, "a", "b"]
    assert loaded == rows.load(VIEW, "o1")


def test_a_listed_row_gone_behind_the_projector_loads_as_a_query_would(setup: tuple[Any, ViewStore, str]) -> None:
    client, rows, table = setup  # (the pending-errors TTL deletes rows, never heads)
    _saved(rows, "o1", ("a", "b"))
    client.delete_item(TableName=table, Key={"order_id": {"S": "o1"}, "error_hash": {"S": "a"}})
    loaded = rows.load_many({VIEW: ["o1"]})[(VIEW.name, "o1")]
    assert loaded == rows.load(VIEW, "o1") and sorted(k for k in loaded.rows if k) == [ORDER_ROW, "b"]


def test_a_change_begun_after_the_head_was_read_refuses_the_save(setup: tuple[Any, ViewStore, str]) -> None:
    """The rows are read after the head: should another writer begin a change in between (a change
    too big for one transaction marks the head first, at the version it had), those rows may be
    half of it. The save folded from them must not land on the marked head."""
    client, rows, table = setup
    events = _saved(rows, "o1", ("a",), ("b",))
    loaded = rows.load_many({VIEW: ["o1"]})[(VIEW.name, "o1")]
    client.update_item(TableName=table, Key=_head_key("o1"), UpdateExpression="SET #p = :p, #t = :t",
                       ExpressionAttributeNames={"#p": PENDING_VERSION_ATTR, "#t": PENDING_TOKEN_ATTR},
                       ExpressionAttributeValues={":p": {"N": "3"}, ":t": {"S": "another writer"}})
    log = InMemoryEventLog()
    log.append("order:o1", [_validated("o1", "a"), _validated("o1", "b"), _validated("o1", "c")])
    third = log.read_stream("order:o1")[2:]
    state = VIEW.fold("o1", third, loaded.state)
    assert loaded.version == len(events)
    with pytest.raises(StaleView):
        rows.save(VIEW, "order:o1", "o1", loaded, state, 3)
    grouped = rows.save_grouped([PendingSave(VIEW, "order:o1", "o1", loaded, state, 3)])  # and in a shared transaction
    assert isinstance(grouped["order:o1"], StaleView)
    head = client.get_item(TableName=table, Key=_head_key("o1"), ConsistentRead=True)["Item"]
    assert head[PENDING_TOKEN_ATTR] == {"S": "another writer"}  # the other writer's change is still its own


def test_a_head_whose_list_would_be_too_long_lists_nothing_and_is_queried(
        setup: tuple[Any, ViewStore, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client, rows, table = setup
    monkeypatch.setattr("projections.view.ROW_KEYS_MAX_BYTES", 9)  # "@order", "a" and "b" fit; with "cd" not
    _saved(rows, "short", ("a", "b"))
    _saved(rows, "long", ("a", "b", "cd"))
    heads = {order: client.get_item(TableName=table, Key=_head_key(order), ConsistentRead=True)["Item"]
             for order in ("short", "long")}
    assert ROW_KEYS_ATTR in heads["short"] and ROW_KEYS_ATTR not in heads["long"]
    calls = Calls(client)
    loaded = rows.load_many({VIEW: ["short", "long"]})
    assert calls.names.count("Query") == 1
    assert loaded == {(VIEW.name, order): rows.load(VIEW, order) for order in ("short", "long")}
    assert sorted(k for k in loaded[(VIEW.name, "long")].rows if k) == [ORDER_ROW, "a", "b", "cd"]
