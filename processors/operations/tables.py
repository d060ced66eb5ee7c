"""Create the template's tables on an endpoint (DynamoDB Local or a scratch account)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from processors.operations.template import TableDefinition, local_table_name, table_definitions
from projections.rebuild.plan import NEW_TABLE_WRITES

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

    @property
    def checkpoints(self) -> str:
        return self.names["checkpoints"]


def database_identity(client: Any, events_table: str) -> str | None:
    """Which database this is: its events table's ARN and creation time (an engine restarted in
    memory, another data directory, another access key or region: another identity). Local state
    files are stamped with it, so they are followed only by the database they describe. None
    while the table does not exist."""
    try:
        table = client.describe_table(TableName=events_table)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None
    return f"{table['TableArn']}@{table['CreationDateTime'].isoformat()}"


Warn = Callable[[str], None]
_logger = logging.getLogger("dynafold.tables")
# What DynamoDB Local answers for an API it does not implement (UpdateContinuousBackups, the tagging
# APIs); anything else is a real failure and raised.
_ENGINE_REFUSES = {"UnknownOperationException"}
_PITR_RETRIES = 10  # a table just ACTIVE may still answer ContinuousBackupsUnavailableException


def create_tables(client: Any, names: TableNames, *, only: set[str] | None = None,
                  tags: Sequence[Mapping[str, str]] = (), warn: Warn = _logger.warning) -> list[str]:
    """Create every missing table with the template's settings and wait for it; existing tables
    are left alone. ``tags`` are the stack's. Returns created names."""
    existing = set(list_table_names(client))
    created = []
    for base, definition in table_definitions().items():
        if only is not None and base not in only:
            continue
        name = names[base]
        if name in existing:
            continue
        if _create(client, definition, name, tags, warn):
            created.append(name)
    return created


def create_copy(client: Any, base_name: str, table_name: str, *, tags_from: str | None = None,
                warm_writes: int = 0, warn: Warn = _logger.warning) -> bool:
    """Create ``table_name`` with the template definition of ``base_name`` (a view's next version:
    same keys, indexes, TTL, encryption, PITR and deletion protection as the deployed one) and wait
    for it. ``tags_from`` names the live table whose tags (the stack's, as CloudFormation propagated
    them) the copy gets; ``warm_writes`` > 0 pre-warms it and its indexes to that many write units
    per second (see with_warm_throughput). False when it already exists."""
    try:
        client.describe_table(TableName=table_name)
        return False
    except client.exceptions.ResourceNotFoundException:
        pass
    tags = _copyable_tags(client, tags_from, warn) if tags_from else []
    _create(client, table_definitions()[base_name], table_name, tags, warn, warm_writes)
    return True


def with_warm_throughput(request: Mapping[str, Any], writes: int) -> dict[str, Any]:
    """The CreateTable ``request`` pre-warmed to ``writes`` write units per second (0: unchanged).

    WarmThroughput is CreateTable's, and each GlobalSecondaryIndex's too: an index starts at the same
    on-demand default (4,000 writes/s) and a throttled index throttles the table's writes, so every
    index gets the table's value. Reads are left at the default (12,000/s): the rebuild reads its
    new tables only to compare them, slower than that. Values below the default are refused by
    DynamoDB, hence the floor. Charged once, for the units raised.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html (WarmThroughput)
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GlobalSecondaryIndex.html
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html"""
    warmed = dict(request)
    if writes <= 0:
        return warmed
    if writes < NEW_TABLE_WRITES:
        raise ValueError(f"warm throughput {writes} is below the on-demand default {NEW_TABLE_WRITES}")
    warm = {"WriteUnitsPerSecond": writes}
    warmed["WarmThroughput"] = warm
    if request.get("GlobalSecondaryIndexes"):
        warmed["GlobalSecondaryIndexes"] = [{**index, "WarmThroughput": warm}
                                            for index in request["GlobalSecondaryIndexes"]]
    return warmed


def _create(client: Any, definition: TableDefinition, name: str, tags: Sequence[Mapping[str, str]],
            warn: Warn, warm_writes: int = 0) -> bool:
    """Create the table as CloudFormation would; False if it was created concurrently.

    CloudFormation's AWS::DynamoDB::Table handler sets keys, indexes, stream, SSE, deletion
    protection and tags in CreateTable, then TTL and PITR once the table is ACTIVE; so does this,
    through the same API calls. Where the engine refuses or ignores one (DynamoDB Local has no PITR
    and no tagging, and accepts but ignores SSESpecification), one warning line names what was not
    applied: a local copy is less protected than AWS's, never silently. So is warm throughput
    (DynamoDB Local accepts WarmThroughput and ignores it: DescribeTable shows none)."""
    request = with_warm_throughput(definition.create_table_kwargs(name, tags), warm_writes)
    try:
        created: Mapping[str, Any] | None = client.create_table(**request)["TableDescription"]
    except client.exceptions.ResourceInUseException:
        return False  # created concurrently: same definition, nothing to do
    if created is None or created.get("TableStatus") != "ACTIVE":  # DynamoDB: CREATING for a while
        _wait_active(client, name)
        created = None  # described again below, as it is now
    if definition.ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": definition.ttl_attribute},
        )
    missing: list[str] = []
    if definition.point_in_time_recovery:
        refused = _enable_pitr(client, name)
        if refused:
            missing.append(f"point-in-time recovery ({refused})")
    missing += _not_applied(client, name, request, created)
    if definition.unresolved_tags:
        missing.append(f"tags {', '.join(definition.unresolved_tags)} (values only CloudFormation resolves)")
    if missing:
        warn(f"warning: {name}: not applied on this engine: {'; '.join(missing)}")
    return True


def _wait_active(client: Any, name: str) -> None:
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})


def _enable_pitr(client: Any, name: str) -> str | None:
    """Turn PITR on; the engine's refusal code if it has no PITR."""
    for attempt in range(_PITR_RETRIES):
        try:
            client.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
            return None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _ENGINE_REFUSES:
                return code
            if code != "ContinuousBackupsUnavailableException" or attempt == _PITR_RETRIES - 1:
                raise
            time.sleep(2)
    return None  # pragma: no cover - the loop returns or raises


def _not_applied(client: Any, name: str, request: Mapping[str, Any],
                 created: Mapping[str, Any] | None = None) -> list[str]:
    """What CreateTable accepted but the table does not show (an engine that ignores a setting):
    from ``created``, CreateTable's answer for a table ACTIVE at once (DynamoDB Local), else described."""
    table = created if created is not None else client.describe_table(TableName=name)["Table"]
    missing = []
    sse = request.get("SSESpecification") or {}
    sse_status = (table.get("SSEDescription") or {}).get("Status")
    if sse.get("Enabled") and sse_status not in ("ENABLED", "ENABLING", "UPDATING"):
        missing.append("encryption with the KMS key (SSEDescription absent)")
    if "DeletionProtectionEnabled" in request and \
            bool(table.get("DeletionProtectionEnabled")) != request["DeletionProtectionEnabled"]:
        missing.append("deletion protection")
    warm = (request.get("WarmThroughput") or {}).get("WriteUnitsPerSecond")
    if warm:
        # DescribeTable reports each table's and index's warm throughput (TableWarmThroughputDescription,
        # GlobalSecondaryIndexWarmThroughputDescription); an engine without it reports none.
        shown = [(table.get("WarmThroughput") or {}).get("WriteUnitsPerSecond", 0)] + [
            (index.get("WarmThroughput") or {}).get("WriteUnitsPerSecond", 0)
            for index in table.get("GlobalSecondaryIndexes", [])]
        if min(shown) < warm:
            missing.append(f"warm throughput {warm:,} writes/s (DescribeTable shows "
                           f"{'none' if not any(shown) else f'{min(shown):,}'})")
    wanted = {tag["Key"]: tag["Value"] for tag in request.get("Tags", [])}
    if wanted:
        present = _tags(client, table["TableArn"])
        if isinstance(present, str):
            missing.append(f"tags {', '.join(sorted(wanted))} ({present})")
        elif any(present.get(key) != value for key, value in wanted.items()):
            missing.append(f"tags {', '.join(sorted(k for k, v in wanted.items() if present.get(k) != v))}")
    return missing


def _tags(client: Any, arn: str) -> dict[str, str] | str:
    """The resource's tags, or the engine's refusal code if it has no tagging."""
    found: dict[str, str] = {}
    request: dict[str, str] = {"ResourceArn": arn}
    while True:
        try:
            page = client.list_tags_of_resource(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _ENGINE_REFUSES:
                return code
            raise
        found.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def _copyable_tags(client: Any, table_name: str, warn: Warn) -> list[dict[str, str]]:
    """The live table's tags a caller may set: CloudFormation's own aws:* tags are reserved."""
    try:
        arn = client.describe_table(TableName=table_name)["Table"]["TableArn"]
    except client.exceptions.ResourceNotFoundException:
        warn(f"warning: {table_name} not found: its tags (the stack's) are not copied")
        return []
    tags = _tags(client, arn)
    if isinstance(tags, str):
        return []  # no tagging on this engine: _create names the tags it could not apply
    return [{"Key": key, "Value": value} for key, value in tags.items() if not key.startswith("aws:")]


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
