"""Operator actions: each appends events through the service the CLI and the routes use, never
edits a row, and answers with a redirect to the page it was asked from."""

from __future__ import annotations

from processors.console.context import Context
from processors.console.web import Page

SOURCE = "urn:dynafold:console"


def mark_alert_read(ctx: Context) -> Page:
    """Appends `alert read` conditionally on the version read (a read alert stays as it is)."""
    ctx.deps.services.alert_reads().mark([ctx.params["alert_id"]], read_by="console", source=SOURCE,
                                         correlation_id=ctx.request.request_id or None)
    return Page.redirect("/console/health#alerts")
