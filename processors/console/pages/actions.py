"""Operator actions: each appends events (the decision is the API's, in processors/services), never
edits a row, and answers with a redirect to the page it was asked from."""

from __future__ import annotations

from processors.console.context import Context
from processors.console.web import Page
from processors.services.alerts import read_plan

SOURCE = "urn:dynafold:console"


def mark_alert_read(ctx: Context) -> Page:
    """Appends `alert read` conditionally on the version read (a read alert stays as it is)."""
    plan, version = read_plan(ctx.deps.store, ctx.params["alert_id"], read_by="console", source=SOURCE,
                              correlation_id=ctx.request.request_id or None)
    if plan is not None:
        ctx.deps.store.append(plan.stream, list(plan.events), version)
    return Page.redirect("/console/health#alerts")
