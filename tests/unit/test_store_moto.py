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
