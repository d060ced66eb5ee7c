"""One contract, every implementation: each test here runs against the in-memory port (always),
moto (unit speed) and DynamoDB Local (marked ``integration``), the way the ``eventsourcing``
library runs one recorder test case against every store. A difference is a defect of one of them.

A harness wraps each implementation with what only a test may do: count the stored events, change
or remove stored items behind the store's back (to prove verification notices), and plant the
guard a writer that stopped half way leaves, or the head an earlier release recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from events.items import Item
from events.keyring import InMemorySubjectKeys, KeyRing
from events.memory import InMemoryEventLog
from events.sealing import PersonalDataLog, Revealer
from events.ports import EventLog
from events.store import EventStore
from processors.local.tables import local_tables, view_keys
from processors.operations.tables import TableNames, create_tables
from projections.memory import InMemoryViewRows
from projections.view import Row
from projections.view_store import ViewStore
from projections.view_store import from_item as row_from_item

# A fixed time for the logs' clocks, taken at the start of the run rather than written down: guards
# expire 30 days after it (expires_at, the idempotency table's TTL attribute), and DynamoDB Local
# deletes expired items in the background as DynamoDB does, so a date that has passed made the
# guard tests flaky once the calendar moved past it.
FIXED = datetime.now(timezone.utc).replace(microsecond=0)
# DynamoDB retries a lost "any" race until this bound.
CONTENTION = timedelta(milliseconds=200)
BACKENDS = ["memory", "sealed", "moto", pytest.param("local", marks=pytest.mark.integration)]


class MemoryLog:
    engine = "memory"

    def __init__(self) -> None:
        self.memory = InMemoryEventLog(clock=lambda: FIXED)
        self.log: EventLog = self.memory

    def count(self) -> int:
        return sum(map(len, self.memory.items.values()))

    def put_raw(self, item: Item) -> None:
        self.memory.items.setdefault(item["stream"]["S"], {})[int(item["version"]["N"])] = item

    def delete_raw(self, stream: str, version: int) -> None:
        del self.memory.items[stream][version]

    def put_guard_raw(self, item: Item) -> None:
        self.memory.guards[item["key"]["S"]] = item

    def put_head_raw(self, item: Item) -> None:
        self.memory.heads[item["stream"]["S"]] = item


class SealedMemoryLog(MemoryLog):
    """The in-memory log behind the personal data layer every function uses (events.sealing): the
    contract holds the wrapper to the same behaviour."""

    engine = "sealed"

    def __init__(self) -> None:
        super().__init__()
        self.log = PersonalDataLog(self.memory, Revealer(KeyRing(InMemorySubjectKeys())))


class DynamoLog:
    def __init__(self, engine: str, client: Any, names: TableNames) -> None:
        self.engine, self.client, self.table, self.idempotency = engine, client, names.events, names.idempotency
        self.log = EventStore.over(client, names, clock=lambda: FIXED,
                              contention_timeout=CONTENTION)

    def count(self) -> int:
        return int(self.client.scan(TableName=self.table, Select="COUNT", ConsistentRead=True)["Count"])

    def put_raw(self, item: Item) -> None:
        self.client.put_item(TableName=self.table, Item=item)

    def delete_raw(self, stream: str, version: int) -> None:
        self.client.delete_item(TableName=self.table, Key={"stream": {"S": stream}, "version": {"N": str(version)}})

    def put_guard_raw(self, item: Item) -> None:
        self.client.put_item(TableName=self.idempotency, Item=item)

    def put_head_raw(self, item: Item) -> None:
        self.client.put_item(TableName=self.idempotency, Item=item)


Harness = MemoryLog | SealedMemoryLog | DynamoLog


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        yield MemoryLog()
        return
    if request.param == "sealed":
        yield SealedMemoryLog()
        return
    yield DynamoLog(request.param, *dynamo_tables(request, request.param))


def dynamo_tables(request: pytest.FixtureRequest, engine: str) -> tuple[Any, TableNames]:
    """A client and fresh tables on ``engine``: moto (stopped at teardown) or a fresh DynamoDB Local database."""
    if engine == "local":
        local = request.getfixturevalue("local_dynamo")
        return local.client, local.names
    mock = mock_aws()
    mock.start()
    request.addfinalizer(mock.stop)
    client = boto3.client("dynamodb", region_name="us-east-1")
    names = TableNames.with_prefix("contract-")
    create_tables(client, names)
    return client, names


@pytest.fixture
def log(harness: Harness) -> EventLog:
    return harness.log


def sealing(harness: Harness) -> EventLog:
    """The harness's log, for a test that seals checkpoints (PartiQL INSERT with parameters)."""
    if harness.engine == "moto":
        pytest.skip("moto's PartiQL parser takes no statement parameters (DynamoDB Local runs the seal)")
    return harness.log


# ------------------------------------------------------------------ view rows

class MemoryRows:
    engine = "memory"

    def __init__(self) -> None:
        self.rows = InMemoryViewRows(view_keys())

    def stored(self, family: str) -> list[Row]:
        return self.rows.rows(family)


class DynamoRows:
    def __init__(self, engine: str, client: Any, views: Mapping[str, str]) -> None:
        self.engine, self.client, self.views = engine, client, views
        self.rows = ViewStore(client, views)

    def stored(self, family: str) -> list[Row]:
        items = self.client.scan(TableName=self.views[family], ConsistentRead=True)["Items"]
        return sorted(map(row_from_item, items), key=repr)


RowsHarness = MemoryRows | DynamoRows


@pytest.fixture(params=[backend for backend in BACKENDS if backend != "sealed"])  # personal data is the log's
def rows_harness(request: pytest.FixtureRequest) -> RowsHarness:
    if request.param == "memory":
        return MemoryRows()
    client, names = dynamo_tables(request, request.param)
    prefix = names.events.removesuffix("events")
    return DynamoRows(request.param, client, local_tables(prefix, versions={}).views)
