"""Shared fixtures: one DynamoDB Local engine per session, a fresh database per test.

DynamoDB Local keeps one database per access key, and slows down as stream-enabled tables
fill, so every test gets its own access key (its own empty database) on the shared engine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from events.store import EventStore
from processors.adapters.aws import dynamodb_client, streams_client
from processors.local.engine import LocalEngine
from processors.operations.tables import TableNames, create_tables


@dataclass
class LocalDynamo:
    endpoint_url: str
    access_key: str
    client: Any
    names: TableNames

    def store(self, **kwargs: Any) -> EventStore:
        return EventStore.over(self.client, self.names, **kwargs)

    def streams(self) -> Any:
        return streams_client(self.endpoint_url, access_key=self.access_key)

    def new_client(self) -> Any:
        return dynamodb_client(self.endpoint_url, access_key=self.access_key)

    def fresh(self) -> "LocalDynamo":
        """Another empty database on the same engine (a test that needs several clean starts)."""
        return new_database(self.endpoint_url)


def new_database(endpoint_url: str) -> LocalDynamo:
    access_key = "t" + uuid.uuid4().hex[:19]
    client = dynamodb_client(endpoint_url, access_key=access_key)
    names = TableNames.with_prefix("test-")
    create_tables(client, names)
    return LocalDynamo(endpoint_url, access_key, client, names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[LocalEngine]:
    endpoint = os.environ.get("DYNAFOLD_TEST_ENDPOINT")
    if endpoint:  # reuse a running engine: DYNAFOLD_TEST_ENDPOINT=http://127.0.0.1:8000
        engine = LocalEngine(in_memory=True, port=int(endpoint.rsplit(":", 1)[1]))
        yield engine
        return
    with LocalEngine(in_memory=True) as engine:
        yield engine


@pytest.fixture
def local_dynamo(dynamodb_local: LocalEngine) -> LocalDynamo:
    return new_database(dynamodb_local.endpoint_url)
