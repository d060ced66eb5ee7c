"""ConsoleFunction: the operator console's pages, behind the HTTP API's /console routes.

The pages live in ``processors.console``; the composition root builds their dependencies and the
handler (``processors.console.app.make_handler``) once per container.
"""

from __future__ import annotations

from typing import Any

from processors.console import app as _app  # noqa: F401 -- the router loads at init, not on the first request
from processors.wiring.aws import lambda_handler


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (ConsoleFunction)."""
    result: dict[str, Any] = lambda_handler("console")(event, context)
    return result
