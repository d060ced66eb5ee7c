"""IngestFunction: the HTTP API (API Gateway HTTP API, payload 2.0) — webhooks, messages, admin and reads.

The routes live in ``processors.api``; the composition root builds their dependencies.
"""

from __future__ import annotations

from typing import Any

from processors.api.app import make_handler  # the routes load at init, not on the first request
from processors.wiring.aws import lambda_handler

__all__ = ["handler", "make_handler"]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (IngestFunction)."""
    result: dict[str, Any] = lambda_handler("ingest")(event, context)
    return result
