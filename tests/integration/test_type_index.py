"""The audit search over the sharded type index (by-type-shard-time) on DynamoDB Local: every event of a
type, once, oldest first, whatever the page size; and on a table that keeps the unsharded by-type-time
(LegacyTypeIndex=true) the events appended before the sharded index existed are found too, and on
one that has only by-type-time (LegacyTypeIndex=only) every event is."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from events.envelope import NewEvent
from events.items import TYPE_INDEX
from events.log_index import EventIndex, InvalidPageToken
from events.store import EventStore
from processors.operations.template import TableDefinition, load_template, resolve_conditions

T0 = datetime(2025, 11, 11, 10, 0, tzinfo=timezone.utc)
TYPE = "dynafold.inventory.stock_adjusted.v2"
EARLIEST, LATEST = "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"


def adjust(sku: str, seconds: float) -> NewEvent:
    return NewEvent(TYPE, {"sku": sku, "delta": -1, "reason": "order"}, time=T0 + timedelta(seconds=seconds))


def every_page(index: EventIndex, limit: int) -> list[tuple[str, str, str]]:
    found, token, pages = [], None, 0
    while True:
        page = index.by_type(TYPE, EARLIEST, LATEST, limit=limit, token=token)
        assert len(page.items) <= limit
        found += [(item["time"]["S"], item["stream"]["S"], item["version"]["N"]) for item in page.items]
        pages += 1
        assert pages < 500, "the search does not end"
        if page.next_token is None:
            return found
        token = page.next_token


def events_table(client, name: str, *, legacy: str) -> str:
    """An event table as template.yaml defines it with LegacyTypeIndex=``legacy`` ("true": the kept
    by-type-time beside by-type-shard-time, "only": by-type-time alone)."""
    template = load_template()
    props = resolve_conditions(template, template["Resources"]["EventsTable"]["Properties"],
                               {"LegacyTypeIndex": legacy})
    client.create_table(**TableDefinition("EventsTable", "events", props).create_table_kwargs(name))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    return name


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_every_event_of_a_type_once_oldest_first_whatever_the_page_size(local_dynamo, limit):
    store = local_dynamo.store()
    for n in range(24):  # 12 SKUs, two events each; pairs share a time (ties across buckets)
        store.append(f"sku:S{n % 12}", [adjust(f"S{n % 12}", n // 2)])
    store.append("sku:OTHER", [NewEvent("dynafold.inventory.buffer_set.v1", {"sku": "OTHER", "buffer": 1},
                                        time=T0)])
    items = list(store.scan_items(segments=1))
    assert len({item["type_shard"]["S"] for item in items if item["type"]["S"] == TYPE}) > 1  # spread

    found = every_page(EventIndex(local_dynamo.client, local_dynamo.names.events), limit)
    expected = sorted((i["time"]["S"], i["stream"]["S"], i["version"]["N"]) for i in items if i["type"]["S"] == TYPE)
    assert sorted(found) == expected and len(found) == len(set(found))
    assert [time for time, _, _ in found] == sorted(time for time, _, _ in found)


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_a_table_keeping_by_type_time_finds_the_events_appended_before_the_sharded_index(local_dynamo, limit):
    client = local_dynamo.client
    table = events_table(client, "legacy-events", legacy="true")
    store = EventStore(client, table, local_dynamo.names.idempotency, local_dynamo.names.checkpoints)
    for n in range(10):
        store.append(f"sku:L{n % 4}", [adjust(f"L{n % 4}", n)])
    # what the release before by-type-shard-time wrote: the same items without type_shard
    for item in list(store.scan_items(segments=1))[:6]:
        del item["type_shard"]
        client.put_item(TableName=table, Item=item)

    index = EventIndex(client, table)
    found = every_page(index, limit)
    assert [time for time, _, _ in found] == sorted(
        (T0 + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for n in range(10))
    assert len(set(found)) == 10  # each once, though an event written since is in both indexes


def test_a_table_created_before_the_sharded_index_is_searched_by_its_by_type_time(local_dynamo):
    client = local_dynamo.client
    table = events_table(client, "old-events", legacy="only")  # the first step of an old stack's upgrade
    indexes = {g["IndexName"] for g in client.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"]}
    assert TYPE_INDEX.index not in indexes and "by-type-time" in indexes
    store = EventStore(client, table, local_dynamo.names.idempotency, local_dynamo.names.checkpoints)
    for n in range(5):
        store.append(f"sku:O{n}", [adjust(f"O{n}", n)])
    assert len(every_page(EventIndex(client, table), 2)) == 5


def test_a_token_for_another_set_of_indexes_is_refused(local_dynamo):
    store = local_dynamo.store()
    for n in range(3):
        store.append(f"sku:T{n}", [adjust(f"T{n}", n)])
    page = EventIndex(local_dynamo.client, local_dynamo.names.events).by_type(TYPE, EARLIEST, LATEST, limit=1)
    legacy = EventIndex(local_dynamo.client, events_table(local_dynamo.client, "with-legacy", legacy="true"))
    with pytest.raises(InvalidPageToken, match="another set"):
        legacy.by_type(TYPE, EARLIEST, LATEST, limit=1, token=page.next_token)
