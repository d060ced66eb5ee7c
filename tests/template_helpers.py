"""Reading IAM and intrinsics out of template.yaml (SAM) and its expansion (plain CloudFormation JSON).

Both forms are normalised to ``processors.operations.template.Tag`` intrinsics, so one set of helpers answers
"which resources does this refer to" and "what may this role do to that table" for either.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from processors.operations.template import Tag

SAMCONFIG = Path(__file__).resolve().parents[1] / "samconfig.toml"

# What the design allows on the event table, and what IAM must refuse to every function.
EVENT_READ_ACTIONS = frozenset({"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                                "dynamodb:DescribeTable"})
# Every DynamoDB action that can change the event table's items, its configuration (TTL on
# `version` would expire the log; PITR, the stream, replicas, resource policy, tags), delete it or
# put another table or backup in its place. The complement of EVENT_HARMLESS_ACTIONS within
# DYNAMODB_ACTIONS (a test checks the partition is complete).
EVENT_MUTATIONS = frozenset({
    # items
    "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
    # the table itself: settings, deletion, re-creation under the same name
    "dynamodb:UpdateTable", "dynamodb:DeleteTable", "dynamodb:CreateTable", "dynamodb:UpdateTimeToLive",
    "dynamodb:UpdateContinuousBackups", "dynamodb:UpdateContributorInsights",
    "dynamodb:RestoreTableToPointInTime", "dynamodb:RestoreTableFromBackup", "dynamodb:RestoreTableFromAwsBackup",
    "dynamodb:ImportTable", "dynamodb:DeleteBackup",
    "dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy", "dynamodb:TagResource", "dynamodb:UntagResource",
    # change data capture besides the stream
    "dynamodb:EnableKinesisStreamingDestination", "dynamodb:DisableKinesisStreamingDestination",
    "dynamodb:UpdateKinesisStreamingDestination",
    # replicas: a global-table replica is written through replication, not through PutItem
    "dynamodb:CreateGlobalTable", "dynamodb:UpdateGlobalTable", "dynamodb:UpdateGlobalTableSettings",
    "dynamodb:UpdateGlobalTableVersion", "dynamodb:CreateTableReplica", "dynamodb:DeleteTableReplica",
    "dynamodb:AssociateTableReplica", "dynamodb:UpdateTableReplicaAutoScaling", "dynamodb:ReplicateSettings",
    "dynamodb:WriteDataForReplication", "dynamodb:CreateGlobalTableWitness", "dynamodb:DeleteGlobalTableWitness",
})
# What may stay possible on the event table: reads, the stream reads Lambda's pollers make, copies
# that leave the table as it is (backups, exports), and PutItem/ConditionCheckItem, the append
# (TransactWriteItems is authorised per item as these). Actions without a resource (account-wide:
# ListTables, DescribeLimits, UpdateAbacStatus, InjectError ...) cannot be scoped to the table at all.
EVENT_HARMLESS_ACTIONS = frozenset({
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:PartiQLSelect",
    "dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:SearchVectors",
    "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeContributorInsights", "dynamodb:DescribeKinesisStreamingDestination",
    "dynamodb:DescribeTableReplicaAutoScaling", "dynamodb:DescribeBackup", "dynamodb:DescribeExport",
    "dynamodb:DescribeImport", "dynamodb:DescribeGlobalTable", "dynamodb:DescribeGlobalTableSettings",
    "dynamodb:GetResourcePolicy", "dynamodb:ListTagsOfResource", "dynamodb:ListExports", "dynamodb:ListImports",
    "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ReadDataForReplication",
    "dynamodb:CreateBackup", "dynamodb:ExportTableToPointInTime", "dynamodb:StartAwsBackupJob",
})
# Every DynamoDB action that takes a table, index, stream, backup or global-table resource, from
# the Service Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/
# reference/list_amazondynamodb.html) as cfn-lint 1.58.0 packages it (cfnlint/data/AdditionalSpecs/
# Policies.json, read 2026-05). tests/integration/test_sam_template.py compares it with the
# installed cfn-lint's copy, so an action AWS adds fails a test until it is classified above.
DYNAMODB_TABLE_ACTIONS = EVENT_MUTATIONS | EVENT_HARMLESS_ACTIONS
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def from_cfn_json(value: Any) -> Any:
    """{"Ref": x} / {"Fn::GetAtt": ...} / {"Fn::Sub": ...} as Tags, like the YAML short forms load."""
    if isinstance(value, list):
        return [from_cfn_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return Tag(key.removeprefix("Fn::"), from_cfn_json(inner))
        return {k: from_cfn_json(v) for k, v in value.items()}
    return value


def refs(value: Any) -> set[str]:
    """Logical ids and parameters a value refers to (Ref, GetAtt, ${Name} and ${Name.Attr} in Sub)."""
    if isinstance(value, Tag):
        if value.name == "Ref":
            return {value.value}
        if value.name == "GetAtt":
            target = value.value
            return {target.split(".")[0] if isinstance(target, str) else target[0]}
        if value.name == "Sub":
            text, variables = (value.value, {}) if isinstance(value.value, str) else value.value
            named = {name.split(".")[0] for name in _SUB_VARIABLE.findall(text)}
            return {n for n in named - set(variables) if not n.startswith("AWS::")} | refs(variables)
        return refs(value.value)
    if isinstance(value, dict):
        return set().union(*(refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value))
    return set()


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements; a conditional one (!If [cond, statement, AWS::NoValue]) counts as granted."""
    found: list[dict[str, Any]] = []
    for statement in as_list(document.get("Statement", [])):
        if isinstance(statement, Tag) and statement.name == "If":
            found += [branch for branch in statement.value[1:] if isinstance(branch, dict)]
        else:
            found.append(statement)
    return found


def role_statements(template: dict[str, Any], role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of an expanded AWS::IAM::Role: inline, and managed policies the template defines."""
    for policy in role["Properties"].get("Policies", []):
        yield from statements(policy["PolicyDocument"])
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        for name in refs(arn):
            resource = template["Resources"].get(name, {})
            if resource.get("Type") == "AWS::IAM::ManagedPolicy":
                yield from statements(resource["Properties"]["PolicyDocument"])


def actions_on(found: Iterable[dict[str, Any]], logical_id: str, effect: str = "Allow") -> set[str]:
    """The actions the statements with this effect grant on a resource (or on every resource: "*")."""
    granted: set[str] = set()
    for statement in found:
        if statement.get("Effect") != effect:
            continue
        resources = as_list(statement.get("Resource", []))
        if logical_id in refs(resources) or "*" in resources:
            granted.update(as_list(statement.get("Action", [])))
    return granted


def strings(value: Any) -> Iterator[str]:
    """Every string literal in a template fragment, inside intrinsics too."""
    if isinstance(value, Tag):
        yield from strings(value.value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings(inner)
    elif isinstance(value, str):
        yield value


def samconfig() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))


def samconfig_overrides(env: str) -> dict[str, str]:
    """An environment's parameter_overrides: a list of "Name=value" or one space-separated string."""
    value = samconfig()[env]["deploy"]["parameters"]["parameter_overrides"]
    pairs = value if isinstance(value, list) else value.split()
    return dict(pair.split("=", 1) for pair in pairs)
