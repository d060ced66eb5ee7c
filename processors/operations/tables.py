"""Create the template's tables on an endpoint (DynamoDB Local or a scratch account)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.operations.template import TableDefinition, local_table_name, table_definitions

DEFAULT_PREFIX = "dynafold-"


@dataclass(frozen=True)
class TableNames:
    """Physical table names by base name; built from env on Lambda, from a prefix locally."""

    names: dict[str, str]

    @classmethod
    def with_prefix(cls, prefix: str = DEFAULT_PREFIX) -> "TableNames":
        return cls({base: local_table_name(prefix, base) for base in table_definitions()})

    def __getitem__(self, base_name: str) -> str:
        return self.names[base_name]

    @property
    def events(self) -> str:
        return self.names["events"]

    @property
    def idempotency(self) -> str:
        return self.names["idempotency"]


def create_tables(client: Any, names: TableNames, *, only: set[str] | None = None) -> list[str]:
    """Create every missing table and wait for it; existing tables are left alone. Returns created names."""
    existing = set(list_table_names(client))
    created = []
    for base, definition in table_definitions().items():
        if only is not None and base not in only:
            continue
        name = names[base]
        if name in existing:
            continue
        _create(client, definition, name)
        created.append(name)
    for name in created:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return created


def _create(client: Any, definition: TableDefinition, name: str) -> None:
    try:
        client.create_table(**definition.create_table_kwargs(name))
    except client.exceptions.ResourceInUseException:
        return  # created concurrently: same definition, nothing to do
    if definition.ttl_attribute:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": definition.ttl_attribute},
        )


def create_copy(client: Any, base_name: str, table_name: str) -> bool:
    """Create ``table_name`` with the template definition of ``base_name`` (a view's next version:
    same keys, indexes and TTL as the deployed one) and wait for it. False when it already exists."""
    try:
        client.describe_table(TableName=table_name)
        return False
    except client.exceptions.ResourceNotFoundException:
        pass
    _create(client, table_definitions()[base_name], table_name)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return True


def list_table_names(client: Any) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_tables").paginate():
        names.extend(page["TableNames"])
    return names


def drop_view_table(client: Any, table_name: str) -> None:
    """Delete a view table copy. The callers check it is a view table and not an active one; the
    event and idempotency tables are never passed here (and IAM denies it on AWS)."""
    client.delete_table(TableName=table_name)
    client.get_waiter("table_not_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
