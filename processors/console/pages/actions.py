"""Operator actions: each appends events through the service the CLI and the routes use (never
edits a row) and answers with a redirect to the page it was asked from, saying what it did. The
router has checked the session's CSRF token before any of these runs."""

from __future__ import annotations

import urllib.parse

from processors.console.context import Context
from processors.console.pages.alerts import filters
from processors.console.render import href
from processors.console.web import Page, PageError

SOURCE = "urn:dynafold:console"
OPERATOR = "console"


def mark_alert_read(ctx: Context) -> Page:
    """Appends `alert read` conditionally on the version read (a read alert stays as it is)."""
    ctx.deps.services.alert_reads().mark([ctx.params["alert_id"]], read_by=OPERATOR, source=SOURCE,
                                         correlation_id=ctx.request.request_id or None)
    return Page.redirect("/console/health#alerts")


def mark_alerts_read(ctx: Context) -> Page:
    """Every unread alert the filter matches (at least one of type, SKU, severity, raised before)."""
    from processors.services.alert_reads import AlertFilter

    given = filters(dict(ctx.form))
    where = AlertFilter.of(given.get("type"), given.get("sku"), given.get("severity"), given.get("before"))
    outcome = ctx.deps.services.alert_reads().mark_matching(where, read_by=OPERATOR, source=SOURCE,
                                                            correlation_id=ctx.request.request_id or None)
    done = {**given, "marked": len(outcome.newly_read), "already": len(outcome.marked) - len(outcome.newly_read)}
    return Page.redirect("/console/alerts?" + urllib.parse.urlencode(done))


def redrive(ctx: Context) -> Page:
    """A dead letter's fresh round of retries, or a scheduled retry now (`redrive requested`)."""
    from processors.services.redrive import RedriveRefused

    try:
        ctx.deps.services.support().redrive.redrive(ctx.params["ref"], requested_by=OPERATOR,
                                                    reason="asked from the console", source=SOURCE)
    except RedriveRefused as refused:  # delivered, or its target disabled: the page says which
        raise PageError(409, str(refused)) from None
    return Page.redirect(href("deliveries", ctx.params["ref"], done="redriven"))


def enable_target(ctx: Context) -> Page:
    """A target disabled after 410 Gone takes deliveries again (`target enabled`)."""
    ctx.deps.services.targets().enable(ctx.form.get("url", ""), reason="enabled from the console",
                                       enabled_by=OPERATOR, source=SOURCE)
    delivery = ctx.form.get("delivery", "")
    return Page.redirect(href("deliveries", delivery, done="enabled") if delivery else "/console/health")


def adopt(ctx: Context) -> Page:
    """Shopify's level as an uncounted SKU's first count (`shopify count adopted`)."""
    chosen = ctx.form.get("from_item", "").strip()
    ctx.deps.services.adoption().adopt([ctx.params["sku"]], OPERATOR, from_items=[chosen] if chosen else (),
                                       source=SOURCE)
    return Page.redirect(href("skus", ctx.params["sku"], done="adopted"))
