"""RebuildCompareFunction: the rebuild state machine's last step — catch up, compare, (optionally) switch.

Thin: runs ``services.rebuild_compare.RebuildComparer`` (the proof a local rebuild runs too) on
the tables the execution filled. The settle wait is cut to the invocation's remaining time. On
``switch`` and an EQUAL verdict it writes the new versions to the SSM parameter the functions read
(``VIEW_VERSIONS_PARAMETER``), then compares once more: what the live projector wrote into the old
tables while the switch took effect is caught up into the new ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processors.services.rebuild_compare import CompareStep
from processors.wiring.aws import lambda_handler


def make_handler(step: CompareStep) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        remaining = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None
        return step.run(event, remaining)

    return handle


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (RebuildCompareFunction)."""
    return lambda_handler("rebuild-compare")(event, context)
