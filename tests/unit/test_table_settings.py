"""Tables made by `dynafold rebuild` carry the template's protection (issue 13 §9), on moto.

The reference is what CloudFormation makes of a template table: its properties as the CreateTable
request (SSESpecification's SSEEnabled is the API's Enabled), the stack's tags (samconfig.toml's
`tags`, which CloudFormation propagates to the stack's tables), then PITR (UpdateContinuousBackups).
It is written out here on purpose, independently of processors.operations.tables, so the comparison
has an oracle. A rebuilt copy must describe the same: DescribeTable, DescribeContinuousBackups,
ListTagsOfResource, minus identity (name, ARN, id, creation time, stream label).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from processors.operations.tables import TableNames, create_copy, create_tables
from processors.operations.template import table_definitions
from tests.template_helpers import samconfig

REGION = "us-east-1"
VIEW_BASES = sorted(base for base in table_definitions() if base not in ("events", "idempotency", "checkpoints"))
IDENTITY = {"TableName", "TableArn", "TableId", "CreationDateTime", "LatestStreamArn", "LatestStreamLabel",
            "IndexArn", "ItemCount", "TableSizeBytes", "IndexSizeBytes", "KMSMasterKeyArn",
            "EarliestRestorableDateTime", "LatestRestorableDateTime"}


def stack_tags(env: str = "default") -> list[dict[str, str]]:
    pairs = samconfig()[env]["deploy"]["parameters"]["tags"].split()
    return [{"Key": k, "Value": v} for k, v in (pair.split("=", 1) for pair in pairs)]


def as_cloudformation_creates(client: Any, base: str, name: str, tags: list[dict[str, str]]) -> None:
    """AWS::DynamoDB::Table's properties as the CloudFormation handler applies them."""
    props = table_definitions()[base].properties
    request: dict[str, Any] = {"TableName": name, "AttributeDefinitions": props["AttributeDefinitions"],
                               "KeySchema": props["KeySchema"], "BillingMode": props["BillingMode"],
                               "Tags": tags + list(props.get("Tags", []))}
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in props:
            request[key] = props[key]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if "SSESpecification" in props:
        request["SSESpecification"] = {"Enabled": props["SSESpecification"]["SSEEnabled"]}
    if "DeletionProtectionEnabled" in props:
        request["DeletionProtectionEnabled"] = props["DeletionProtectionEnabled"]
    client.create_table(**request)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    if "TimeToLiveSpecification" in props:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in props:
        client.update_continuous_backups(TableName=name,
                                         PointInTimeRecoverySpecification=props["PointInTimeRecoverySpecification"])


def without_identity(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_identity(v) for k, v in value.items() if k not in IDENTITY}
    if isinstance(value, list):
        return [without_identity(v) for v in value]
    return value


def described(client: Any, name: str) -> dict[str, Any]:
    table = client.describe_table(TableName=name)["Table"]
    backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    tags = client.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return without_identity({"table": table, "backups": backups, "ttl": ttl,
                             "tags": sorted(tags, key=lambda t: t["Key"])})


@pytest.fixture
def client():
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


@pytest.mark.parametrize("base", VIEW_BASES)
def test_a_rebuilt_view_table_describes_like_the_template_created_one(client, base):
    family, version = base.rsplit("-v", 1)
    live, rebuilt = f"dynafold-dev-{base}", f"dynafold-dev-{family}-v{int(version) + 1}"
    as_cloudformation_creates(client, base, live, stack_tags())
    warnings: list[str] = []
    assert create_copy(client, base, rebuilt, tags_from=live, warn=warnings.append)
    assert described(client, rebuilt) == described(client, live)
    assert warnings == []  # moto applies everything: nothing to degrade
    settings = described(client, rebuilt)
    assert settings["table"]["SSEDescription"]["Status"] == "ENABLED"
    assert settings["backups"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert {t["Key"] for t in settings["tags"]} >= {"project", "stage"}


def test_tables_created_from_the_template_carry_its_settings(client):
    names = TableNames.with_prefix("dynafold-dev-")
    create_tables(client, names, tags=stack_tags())
    for base in table_definitions():
        reference = f"reference-{base}"
        as_cloudformation_creates(client, base, reference, stack_tags())
        assert described(client, names[base]) == described(client, reference), base
    assert client.describe_table(TableName=names.events)["Table"]["DeletionProtectionEnabled"] is True


def test_aws_reserved_tags_of_the_live_table_are_not_copied(client):
    live = "dynafold-dev-alerts-v1"
    as_cloudformation_creates(client, "alerts-v1", live, stack_tags())
    # CloudFormation adds aws:cloudformation:* tags; a TagResource with the aws: prefix is refused.
    arn = client.describe_table(TableName=live)["Table"]["TableArn"]
    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "dynafold-dev"}])
    create_copy(client, "alerts-v1", "dynafold-dev-alerts-v2", tags_from=live)
    copied = client.list_tags_of_resource(
        ResourceArn=client.describe_table(TableName="dynafold-dev-alerts-v2")["Table"]["TableArn"])["Tags"]
    assert sorted(t["Key"] for t in copied) == ["project", "stage"]
