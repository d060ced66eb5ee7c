"""EventStore.append_streams (issue 11 §2): one decision across streams, all or nothing, once."""

from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from events.envelope import NewEvent, PlannedAppend
from events.errors import IdempotencyKeyReused, InvalidStreamId, TooManyEvents
from events.store import EventStore
from processors.operations.tables import TableNames, create_tables

FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def store():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = TableNames.with_prefix("unit-")
        create_tables(client, names)
        yield EventStore(client, names.events, names.idempotency, clock=lambda: FIXED)


def sold(sku, delta=-1):
    return PlannedAppend(f"sku:{sku}", (NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": delta}),))


def count(store):
    return store._client.scan(TableName=store.events_table, Select="COUNT")["Count"]


def test_streams_are_appended_together_at_their_heads_and_a_repeat_gets_the_original(store):
    store.append("sku:B", [sold("B").events[0]])
    first = store.append_streams([sold("A"), sold("B")], "k")
    assert [(r.stream, r.first_version) for r in first] == [("sku:A", 1), ("sku:B", 2)]
    again = store.append_streams([sold("A"), sold("B")], "k")
    assert [r.event_ids for r in again] == [r.event_ids for r in first] and all(r.deduplicated for r in again)
    assert store.recorded_streams("k") == again and count(store) == 3
    assert store.verify_stream("sku:B").ok


def test_a_bad_stream_anywhere_appends_nothing(store):
    with pytest.raises(InvalidStreamId):
        store.append_streams([sold("A"), sold("B"), PlannedAppend("sku:\x01", sold("C").events)], "k")
    assert count(store) == 0 and store.recorded_streams("k") is None


def test_one_transaction_is_the_limit_and_a_key_names_one_request(store):
    with pytest.raises(TooManyEvents):
        store.append_streams([sold(f"S{n}") for n in range(100)], "k")  # 100 events + the guard
    store.append_streams([sold("A")], "k")
    with pytest.raises(IdempotencyKeyReused):
        store.append_streams([sold("A", -5)], "k")
