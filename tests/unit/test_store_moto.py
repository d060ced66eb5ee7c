"""What only the DynamoDB store does: how it reads DynamoDB's refusals and lost races. The log's
behaviour itself is the contract every EventLog meets (tests/contract/test_event_log.py)."""

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from events.envelope import NewEvent
from events.errors import DynafoldError, InvalidAppend, StreamContended, VersionConflict
from events.store import ANY, NO_STREAM, EventStore
from processors.operations.tables import TableNames, create_tables

FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def store():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = TableNames.with_prefix("unit-")
        create_tables(client, names)
        yield EventStore.over(client, names, clock=lambda: FIXED)


def buffer(sku="A", value=1, **kw):
    return NewEvent("dynafold.inventory.buffer_set.v1", {"sku": sku, "buffer": value}, **kw)


def count_items(store):
    return store._client.scan(TableName=store.events_table, Select="COUNT")["Count"]


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
    invalid = EventStore(cancelling, store.events_table, store.idempotency_table,
                         store.checkpoints_table, clock=lambda: FIXED)
    with pytest.raises(DynafoldError) as caught:
        invalid.append("sku:A", [buffer(), buffer()], ANY, idempotency_key="wh-big")
    assert not isinstance(caught.value, VersionConflict)
    assert "Item size has exceeded" in str(caught.value)
    assert cancelling.calls == 1  # refused at once: retrying bad input cannot succeed
    assert count_items(store) == 0


class RefusesOutright(CancelsWith):
    """A client whose transactions DynamoDB refuses as a whole (ValidationException), as it does an item
    whose key is too large (the stores refuse the known cases themselves first; this is the rest)."""

    def transact_write_items(self, TransactItems):
        self.calls += 1
        raise ClientError({"Error": {"Code": "ValidationException", "Message": self.message}}, "TransactWriteItems")


def test_an_input_the_engine_refuses_outright_is_bad_input_not_a_500(store):
    refusing = RefusesOutright(store._client, "ValidationException", "One or more parameter values were invalid")
    invalid = EventStore(refusing, store.events_table, store.idempotency_table,
                         store.checkpoints_table, clock=lambda: FIXED)
    with pytest.raises(InvalidAppend, match="parameter values were invalid"):
        invalid.append("sku:A", [buffer(), buffer()], NO_STREAM)
    assert refusing.calls == 1 and count_items(store) == 0


def test_a_race_that_never_ends_is_bounded_in_time_and_writes_nothing(store):
    """Retries of a lost race ('any', transaction conflicts) stop at the contention timeout."""
    always = CancelsWith(store._client, "TransactionConflict", "Transaction is ongoing for the item")
    busy = EventStore(always, store.events_table, store.idempotency_table, store.checkpoints_table,
                      clock=lambda: FIXED, contention_timeout=timedelta(milliseconds=300))
    started = time.monotonic()
    with pytest.raises(StreamContended):
        busy.append("sku:A", [buffer(), buffer()], ANY, idempotency_key="wh-busy")
    assert 0.3 <= time.monotonic() - started < 2 and always.calls > 3
    assert count_items(store) == 0


# ------------------------------------------------------------------ a keyed append's two writes

class Crash(BaseException):
    """The process dies here (a Lambda timeout, a lost container): nothing after it runs."""


class BeforeEventWrites:
    """A client that runs ``hook`` (once) just before the first write to the events table: a writer
    paused or killed between its guard and its events."""

    def __init__(self, client, events_table, hook):
        self._client, self._events, self._hook, self.writes = client, events_table, hook, []

    def _before(self, operation, table):
        self.writes.append((operation, table))
        if table == self._events and self._hook is not None:
            hook, self._hook = self._hook, None
            hook()

    def put_item(self, **kwargs):
        self._before("PutItem", kwargs["TableName"])
        return self._client.put_item(**kwargs)

    def transact_write_items(self, TransactItems):
        self._before("TransactWriteItems", TransactItems[0]["Put"]["TableName"])
        return self._client.transact_write_items(TransactItems=TransactItems)

    def __getattr__(self, name):
        return getattr(self._client, name)


def other(store, client):
    return EventStore(client, store.events_table, store.idempotency_table, store.checkpoints_table,
                      clock=lambda: FIXED)


def test_a_writer_that_dies_between_its_guard_and_its_events_is_finished_by_the_retry_once(store):
    def die():
        raise Crash

    dying = other(store, BeforeEventWrites(store._client, store.events_table, die))
    with pytest.raises(Crash):
        dying.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")
    assert count_items(store) == 0 and store.recorded("wh-1") is None  # guarded, not written
    planned = store._client.get_item(TableName=store.idempotency_table, Key={"key": {"S": "wh-1"}})["Item"]
    retry = store.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")
    assert (retry.versions, retry.deduplicated) == ((1,), False)
    assert list(retry.event_ids) == [v["S"] for v in planned["event_ids"]["L"]]  # the events the guard promised
    again = store.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    assert again.deduplicated and again.event_ids == retry.event_ids and count_items(store) == 1


def test_a_retry_after_another_writer_took_the_planned_version_replans_once_and_the_paused_writer_yields(store):
    outcomes = {}

    def meanwhile():  # the first writer is paused after its guard: another append takes version 1, the key is retried
        store.append("sku:A", [buffer(value=1)], NO_STREAM)
        outcomes["retry"] = store.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")

    paused = other(store, BeforeEventWrites(store._client, store.events_table, meanwhile))
    outcomes["paused"] = paused.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    retry, resumed = outcomes["retry"], outcomes["paused"]
    assert (retry.versions, retry.deduplicated) == ((2,), False)
    assert (resumed.versions, resumed.event_ids, resumed.deduplicated) == ((2,), retry.event_ids, True)
    assert [e.data.buffer for e in store.read_stream("sku:A")] == [1, 7] and store.verify_stream("sku:A").ok


def test_one_event_is_one_put_and_a_keyed_one_a_guard_put_before_it():
    """The write shape behind the write units: no transaction, no head (events/appending.py)."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = TableNames.with_prefix("unit-")
        create_tables(client, names)
        recording = BeforeEventWrites(client, names.events, None)
        store = EventStore.over(recording, names, clock=lambda: FIXED)
        store.append("sku:A", [buffer()], NO_STREAM)
        store.append("sku:A", [buffer(value=2)], 1)
        store.append("sku:A", [buffer(value=3)], 2, idempotency_key="wh-3")
        store.append("sku:A", [buffer(value=n) for n in range(4, 104)], 3)
        assert recording.writes == [("PutItem", names.events), ("PutItem", names.events),
                                    ("PutItem", names.idempotency), ("PutItem", names.events),
                                    ("TransactWriteItems", names.events)]
