"""The store's logic on moto: small and fast. Concurrency and engine behaviour are integration tests."""

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from events.envelope import NewEvent
from events.errors import (
    DynafoldError,
    EventTooLarge,
    IdempotencyKeyReused,
    InvalidEventData,
    InvalidExpectedVersion,
    InvalidStreamId,
    TooManyEvents,
    StreamContended,
    UnknownEventType,
    VersionConflict,
)
from events.store import ANY, NO_STREAM, EventStore
from processors.operations.tables import TableNames, create_tables

FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def store():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = TableNames.with_prefix("unit-")
        create_tables(client, names)
        yield EventStore(client, names.events, names.idempotency, clock=lambda: FIXED)


def buffer(sku="A", value=1, **kw):
    return NewEvent("dynafold.inventory.buffer_set.v1", {"sku": sku, "buffer": value}, **kw)


def count_items(store):
    return store._client.scan(TableName=store.events_table, Select="COUNT")["Count"]


def test_append_and_read_back_in_order(store):
    first = store.append("sku:A", [buffer(value=1)], NO_STREAM)
    second = store.append("sku:A", [buffer(value=2), buffer(value=3)], 1)
    assert (first.first_version, second.versions) == (1, (2, 3))
    events = store.read_stream("sku:A")
    assert [e.version for e in events] == [1, 2, 3]
    assert [e.data.buffer for e in events] == [1, 2, 3]
    assert events[0].time == FIXED and events[0].correlation_id == events[0].id
    assert events[1].prev_hash == events[0].hash
    assert store.read_stream("sku:A", from_version=3)[0].data.buffer == 3


def test_cloudevent_view_has_sequence_and_subject(store):
    store.append("sku:A", [buffer(correlation_id="req-1", causation_id="evt-0")], NO_STREAM)
    view = store.read_stream("sku:A")[0].to_json()
    assert view["subject"] == "sku:A"
    assert view["sequence"] == "00000000000000000001"
    assert (view["correlationid"], view["causationid"]) == ("req-1", "evt-0")


def test_conflict_carries_the_actual_version(store):
    store.append("sku:A", [buffer(), buffer()], NO_STREAM)
    with pytest.raises(VersionConflict) as caught:
        store.append("sku:A", [buffer()], 1)
    assert caught.value.actual == 2
    with pytest.raises(VersionConflict) as caught:
        store.append("sku:A", [buffer()], NO_STREAM)
    assert caught.value.actual == 2
    with pytest.raises(VersionConflict) as caught:
        store.append("sku:B", [buffer(sku="B")], 5)
    assert caught.value.actual == 0
    assert store.append("sku:A", [buffer()], ANY).first_version == 3


def test_idempotent_repeat_returns_the_original_and_writes_nothing(store):
    original = store.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")
    repeat = store.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    assert repeat.deduplicated and (repeat.stream, repeat.versions, repeat.event_ids) == (
        original.stream, original.versions, original.event_ids)
    assert count_items(store) == 1
    with pytest.raises(IdempotencyKeyReused):
        store.append("sku:A", [buffer(value=8)], ANY, idempotency_key="wh-1")
    assert count_items(store) == 1


@pytest.mark.parametrize(
    "stream, events, expected, error",
    [
        ("sku:A", [NewEvent("dynafold.nope.nope.v1", {})], ANY, UnknownEventType),
        ("sku:A", [NewEvent("dynafold.inventory.buffer_set.v1", {"sku": "A", "buffer": -1})], ANY, InvalidEventData),
        ("sku:A", [NewEvent("dynafold.inventory.buffer_set.v1", {"sku": "A", "buffer": 1, "x": 1})], ANY,
         InvalidEventData),
        ("order:A", [buffer()], ANY, InvalidStreamId),
        ("A", [buffer()], ANY, InvalidStreamId),
        ("sku:A", [buffer()], -1, InvalidExpectedVersion),
        ("sku:A", [buffer()], "latest", InvalidExpectedVersion),
        ("sku:A", [], ANY, TooManyEvents),
        ("sku:A", [buffer()] * 101, ANY, TooManyEvents),
        ("sku:A", [NewEvent("dynafold.delivery.message_received.v1",
                            {"sender_id": "s", "message_id": "m", "target_url": "https://x",
                             "payload": {"blob": "x" * 410_000}})], ANY, InvalidStreamId),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_nothing(store, stream, events, expected, error):
    with pytest.raises(error):
        store.append(stream, events, expected)
    assert count_items(store) == 0


def test_oversized_event_is_refused_before_any_write(store):
    big = NewEvent("dynafold.delivery.message_received.v1",
                   {"sender_id": "s", "message_id": "m", "target_url": "https://x", "payload": {"blob": "x" * 410_000}})
    with pytest.raises(EventTooLarge, match="400"):
        store.append("delivery:s:m", [big], NO_STREAM)
    assert count_items(store) == 0


def test_verify_finds_an_item_changed_behind_the_store(store):
    store.append("sku:A", [buffer(value=1), buffer(value=2), buffer(value=3)], NO_STREAM)
    assert store.verify_stream("sku:A").ok
    store._client.put_item(TableName=store.events_table, Item={
        **store._client.get_item(TableName=store.events_table,
                                 Key={"stream": {"S": "sku:A"}, "version": {"N": "2"}})["Item"],
        "data": {"S": '{"buffer":200,"sku":"A"}'},
    })
    report = store.verify_stream("sku:A")
    assert (report.broken.stream, report.broken.version) == ("sku:A", 2)


class CancelsWith:
    """A client whose transactions are cancelled with the given reason on the events' Put (the shape
    DynamoDB documents for TransactWriteItems: one reason per item, in request order)."""

    def __init__(self, client, code, message):
        self._client, self.code, self.message, self.calls = client, code, message, 0

    def transact_write_items(self, TransactItems):
        self.calls += 1
        reasons = [{"Code": "None"} for _ in TransactItems]
        reasons[0] = {"Code": self.code, "Message": self.message}
        raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                     "Message": f"Transaction cancelled [{self.code}]"},
                           "CancellationReasons": reasons}, "TransactWriteItems")

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_validation_error_inside_a_transaction_is_bad_input_not_a_conflict(store):
    cancelling = CancelsWith(store._client, "ValidationError", "Item size has exceeded the maximum allowed size")
    invalid = EventStore(cancelling, store.events_table, store.idempotency_table, clock=lambda: FIXED)
    with pytest.raises(DynafoldError) as caught:
        invalid.append("sku:A", [buffer(), buffer()], ANY, idempotency_key="wh-big")
    assert not isinstance(caught.value, VersionConflict)
    assert "Item size has exceeded" in str(caught.value)
    assert cancelling.calls == 1  # refused at once: retrying bad input cannot succeed
    assert count_items(store) == 0


def test_an_input_the_engine_refuses_outright_is_bad_input_not_a_500(store):
    """An event id longer than an index key may be (2048 bytes): DynamoDB answers ValidationException."""
    with pytest.raises(DynafoldError) as caught:
        store.append("sku:A", [buffer(id="x" * 5000), buffer()], NO_STREAM)
    assert not isinstance(caught.value, VersionConflict)
    assert count_items(store) == 0


def test_a_race_that_never_ends_is_bounded_in_time_and_writes_nothing(store):
    """Retries of a lost race ('any', transaction conflicts) stop at the contention timeout."""
    always = CancelsWith(store._client, "TransactionConflict", "Transaction is ongoing for the item")
    busy = EventStore(always, store.events_table, store.idempotency_table, clock=lambda: FIXED,
                      contention_timeout=timedelta(milliseconds=300))
    started = time.monotonic()
    with pytest.raises(StreamContended):
        busy.append("sku:A", [buffer(), buffer()], ANY, idempotency_key="wh-busy")
    assert 0.3 <= time.monotonic() - started < 2 and always.calls > 3
    assert count_items(store) == 0


def test_verify_finds_the_tail_of_a_stream_deleted_behind_the_store(store):
    store.append("sku:A", [buffer(value=1), buffer(value=2), buffer(value=3)], NO_STREAM)
    store._client.delete_item(TableName=store.events_table, Key={"stream": {"S": "sku:A"}, "version": {"N": "3"}})
    report = store.verify_stream("sku:A")
    assert (report.broken.stream, report.broken.version) == ("sku:A", 3) and "truncated" in report.broken.problem
