"""Read `template.yaml`, the one source of truth for tables and event source mappings.

The local runner and the tests create tables from these definitions, and the local stream
runner takes its batch settings from the same event source mappings Lambda uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
_STACK_PREFIX = "${AWS::StackName}-"


@dataclass(frozen=True)
class Tag:
    """A CloudFormation intrinsic (!Sub, !Ref, !GetAtt, ...) kept as data."""

    name: str
    value: Any


class _Loader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct_tag)


@lru_cache(maxsize=4)
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class TableDefinition:
    logical_id: str
    base_name: str  # the name after "${AWS::StackName}-", e.g. "events"
    properties: dict[str, Any]

    def create_table_kwargs(self, table_name: str, stack_tags: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
        """The CreateTable request for this definition, as CloudFormation makes it: keys, indexes,
        stream, encryption, deletion protection and tags (the stack's, which CloudFormation propagates
        to its tables, then the table's own). TTL and PITR are separate calls once the table is ACTIVE."""
        props = self.properties
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        sse = props.get("SSESpecification")
        if sse:
            # CloudFormation's SSEEnabled is the API's Enabled (true = the AWS managed KMS key).
            kwargs["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))} | (
                {"SSEType": sse["SSEType"]} if "SSEType" in sse else {}) | (
                {"KMSMasterKeyId": sse["KMSMasterKeyId"]} if isinstance(sse.get("KMSMasterKeyId"), str) else {})
        if "DeletionProtectionEnabled" in props:
            kwargs["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
        tags = {tag["Key"]: tag["Value"] for tag in stack_tags}
        tags |= {tag["Key"]: tag["Value"] for tag in props.get("Tags", []) if isinstance(tag.get("Value"), str)}
        if tags:
            kwargs["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(index_kind):
                kwargs[index_kind] = props[index_kind]
        stream = props.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        return kwargs

    @property
    def ttl_attribute(self) -> str | None:
        spec = self.properties.get("TimeToLiveSpecification")
        return spec["AttributeName"] if spec and spec.get("Enabled") else None

    @property
    def point_in_time_recovery(self) -> bool:
        spec = self.properties.get("PointInTimeRecoverySpecification") or {}
        return bool(spec.get("PointInTimeRecoveryEnabled"))

    @property
    def unresolved_tags(self) -> list[str]:
        """Keys of the table's own tags whose values are intrinsics (known only to CloudFormation)."""
        return [tag["Key"] for tag in self.properties.get("Tags", []) if not isinstance(tag.get("Value"), str)]

    @property
    def has_stream(self) -> bool:
        return bool(self.properties.get("StreamSpecification"))


def _base_name(logical_id: str, table_name: Any) -> str:
    if isinstance(table_name, Tag) and table_name.name == "Sub" and isinstance(table_name.value, str):
        text = table_name.value
        if text.startswith(_STACK_PREFIX) and "${" not in text[len(_STACK_PREFIX):]:
            return text[len(_STACK_PREFIX):]
    raise ValueError(
        f"{logical_id}: TableName must be !Sub \"${{AWS::StackName}}-<name>\" so local names can be derived"
    )


def table_definitions(template: dict[str, Any] | None = None) -> dict[str, TableDefinition]:
    """Every AWS::DynamoDB::Table of the template by base name ("events", "idempotency", ...), its
    conditional parts decided as a deploy with the parameters' defaults decides them."""
    template = template or load_template()
    tables = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resolve_conditions(template, resource["Properties"])
        base = _base_name(logical_id, props.get("TableName"))
        tables[base] = TableDefinition(logical_id, base, props)
    return tables


_NO_VALUE = Tag("Ref", "AWS::NoValue")


def resolve_conditions(template: Mapping[str, Any], value: Any,
                       parameters: Mapping[str, Any] | None = None) -> Any:
    """``value`` with every ``!If`` decided and every ``!Ref AWS::NoValue`` removed, as CloudFormation
    does, the template's parameters taking their defaults (or ``parameters``). Only the condition
    functions (Equals, Not, And, Or, Condition) are evaluated; other intrinsics are kept as Tags."""
    given = dict(parameters or {})

    def parameter(name: str) -> Any:
        if name in given:
            return given[name]
        declared = (template.get("Parameters") or {}).get(name)
        if declared is None or "Default" not in declared:
            raise ValueError(f"!Ref {name}: no such parameter with a default to decide a condition")
        return declared["Default"]

    def operand(node: Any) -> Any:
        if isinstance(node, Tag) and node.name == "Ref":
            return str(parameter(node.value))
        if isinstance(node, Tag):
            return condition(node)
        return str(node)

    def condition(node: Any) -> bool:
        if isinstance(node, Tag) and node.name == "Condition":
            return condition((template.get("Conditions") or {})[node.value])
        if isinstance(node, Tag) and node.name == "Equals":
            left, right = node.value
            return bool(operand(left) == operand(right))
        if isinstance(node, Tag) and node.name == "Not":
            return not condition(node.value[0])
        if isinstance(node, Tag) and node.name in ("And", "Or"):
            decided = [condition(part) for part in node.value]
            return all(decided) if node.name == "And" else any(decided)
        raise ValueError(f"cannot decide the condition {node!r}")

    def resolve(node: Any) -> Any:
        if isinstance(node, Tag) and node.name == "If":
            name, when_true, when_false = node.value
            decided = condition((template.get("Conditions") or {})[name])
            return resolve(when_true if decided else when_false)
        if isinstance(node, list):
            return [item for item in (resolve(item) for item in node) if item != _NO_VALUE]
        if isinstance(node, dict):
            return {key: item for key, item in ((key, resolve(item)) for key, item in node.items())
                    if item != _NO_VALUE}
        return node

    return resolve(value)


_NAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")


def local_table_name(prefix: str, base_name: str) -> str:
    name = f"{prefix}{base_name}"
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid table name {name!r} (from prefix {prefix!r})")
    return name


def lambda_functions(template: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Every AWS::Serverless::Function by the name after "${AWS::StackName}-" in its FunctionName
    (projector, reactor, ingest, ...), in template order."""
    template = template or load_template()
    names = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        name = resource["Properties"].get("FunctionName")
        if not (isinstance(name, Tag) and name.name == "Sub" and isinstance(name.value, str)
                and name.value.startswith(_STACK_PREFIX)):
            raise ValueError(f'{logical_id}: FunctionName must be !Sub "${{AWS::StackName}}-<name>"')
        names.append(name.value[len(_STACK_PREFIX):])
    return tuple(names)


def function_log_groups(stack_name: str, template: dict[str, Any] | None = None) -> dict[str, str]:
    """function -> its log group in the deployed stack: Lambda's /aws/lambda/<function name>, the
    name the template's log groups are declared with."""
    return {name: f"/aws/lambda/{stack_name}-{name}" for name in lambda_functions(template)}
