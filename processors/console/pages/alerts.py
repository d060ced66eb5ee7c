"""Alerts: every alert matching a filter (type, SKU, severity, raised before; unread or all), newest
first, from the alerts view's indexes; with a filter, one button marks every unread match read
(the action itself is in ``actions``)."""

from __future__ import annotations

from typing import Any

from processors.console.context import Context
from processors.console.web import Page
from projections.alerts import SEVERITIES
from projections.alerts.fold import ALERT_TYPES
from projections.unit import InvalidQuery, page_limit

ALERTS_PAGE = 100
FILTERS = ("type", "sku", "severity", "before")


def filters(values: dict[str, str]) -> dict[str, str]:
    """The filter's fields that were given (blank ones left out)."""
    return {name: values[name].strip() for name in FILTERS if values.get(name, "").strip()}


def page(ctx: Context) -> Page:
    from processors.services.alert_reads import AlertFilter

    given = filters(dict(ctx.query))
    shown = ctx.query.get("show", "unread")
    if shown not in ("unread", "all"):
        raise InvalidQuery(f"show must be unread or all, not {shown[:20]!r}")
    where = AlertFilter.of(given.get("type"), given.get("sku"), given.get("severity"), given.get("before")) \
        if given else None
    limit = page_limit(ctx.query, ALERTS_PAGE, 1000)
    found = ctx.deps.queries.alerts.find(unread=True if shown == "unread" else None,
                                         severity=where.severity if where else None, sku=where.sku if where else None,
                                         alert_type=where.alert_type if where else None,
                                         before=where.before if where else None)
    unread = sum(1 for alert in found if alert.is_unread)
    marked: dict[str, Any] = {name: ctx.query[name] for name in ("marked", "already") if name in ctx.query}
    return ctx.page("alerts.html", section="health", title="Alerts", alerts=found[:limit], total=len(found),
                    unread_matching=unread, given=given, show=shown, types=ALERT_TYPES, severities=SEVERITIES,
                    marked=marked)
