"""Create the template's tables on an endpoint (DynamoDB Local or a scratch account)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.template import TableDefinition, local_table_name, table_definitions

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
    existing = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
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
