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
EVENT_MUTATIONS = frozenset({"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                             "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"})
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
