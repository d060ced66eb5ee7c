"""Expand template.yaml to plain CloudFormation offline, with the SAM CLI venv's aws-sam-translator.

Run with that venv's Python: ``.venv-sam/bin/python tests/integration/expand_sam.py TEMPLATE OUT``.
cfn-lint checks SAM resources against SAM's schema only, so a misspelt value inside a SAM
property (``FunctionResponseTypes``, ``Runtime``) passes it; the expanded template has the real
AWS::Lambda::EventSourceMapping, IAM roles and functions, where cfn-lint does catch those.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# What `sam package` would put there: the translator accepts only S3 locations for code.
PACKAGED = "s3://dynafold-offline-expansion/artifact.zip"
_CODE_PROPERTY = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class OfflinePolicies(ManagedPolicyLoader):
    """No IAM lookups: the template names managed policies by ARN or by !Ref, never by bare name."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)  # type: ignore[arg-type]

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any], base: str = ".") -> dict[str, Any]:
    function_globals = (template.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = PACKAGED
    for resource in template["Resources"].values():
        key = _CODE_PROPERTY.get(resource.get("Type"))
        if key and key in (resource.get("Properties") or {}):
            resource["Properties"][key] = PACKAGED
        # `sam package` uploads a local state machine definition; offline it goes inline, so the
        # expanded AWS::StepFunctions::StateMachine carries the real definition for cfn-lint.
        properties = resource.get("Properties") or {}
        uri = properties.get("DefinitionUri")
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            path = os.path.join(base, uri)
            if not os.path.exists(path):  # a mutated copy of the template elsewhere: the repository's file
                path = os.path.join(os.path.dirname(__file__), "..", "..", uri)
            with open(path, encoding="utf-8") as definition:
                properties["Definition"] = json.load(definition)
            del properties["DefinitionUri"]
    return template


def expand(text: str, base: str = ".") -> dict[str, Any]:
    return transform(packaged(yaml_parse(text), base), {}, OfflinePolicies())


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    with open(source, encoding="utf-8") as handle:
        expanded = expand(handle.read(), os.path.dirname(os.path.abspath(source)))
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(expanded, handle, indent=1, sort_keys=True)
