"""RebuildCompareFunction: the rebuild state machine's comparison steps (``services.rebuild_compare.CompareStep``).

Thin: ``compare`` proves one scan segment of the view tables (the compare map runs one per
segment, with the comparer a local rebuild runs too), ``verdict`` sums the segments and switches
on EQUAL by writing the SSM parameter the functions read (``VIEW_VERSIONS_PARAMETER``), and
``catch_up`` carries one segment over after the switch. A segment's settle wait is cut to the
invocation's remaining time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processors.services.rebuild_compare import CompareStep


def make_handler(step: CompareStep) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        remaining = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None
        return step.run(event, remaining)

    return handle
