"""RebuildCompareFunction: the Lambda entry point (template.yaml's Handler).

The composition root builds the handler once per container (processors/wiring/aws.py) from
``processors.handlers.rebuild_compare`` and the services it wires; nothing else happens here.
"""

from __future__ import annotations

from typing import Any

from processors.handlers import rebuild_compare as _shape  # noqa: F401 -- loaded at init, not on the first invocation
from processors.wiring.aws import lambda_handler


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (RebuildCompareFunction)."""
    result: dict[str, Any] = lambda_handler("rebuild-compare")(event, context)
    return result
