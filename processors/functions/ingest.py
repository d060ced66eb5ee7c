"""IngestFunction: the HTTP API (API Gateway HTTP API, payload 2.0) — webhooks, messages, admin and reads.

The routes live in ``processors.api``; the composition root builds their dependencies and the
handler (``processors.api.app.make_handler``) once per container.
"""

from __future__ import annotations

from typing import Any

from processors.api import app as _app  # noqa: F401 -- the routes load at init, not on the first request
from processors.wiring.aws import lambda_handler


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (IngestFunction)."""
    result: dict[str, Any] = lambda_handler("ingest")(event, context)
    return result
