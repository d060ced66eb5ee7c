"""Health: what needs an operator now, from what the views hold today.

Active view versions, unread alerts (with mark-read), stream failures (record_failed alerts),
dead-lettered deliveries, order errors past their grace period, and a chart of the alerts raised
in the last 24 hours. Each section reads one index; none is shown with made-up figures. (Reader
lag over time comes with the status service, issue 19.)
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

from events.envelope import format_time
from processors.console.context import Context
from processors.console.web import Page
from projections.alerts import SEVERITIES
from projections.delivery_status.fold import FAILED, MAX_RETRIES_EXCEEDED
from projections.unit import key_query, s

ALERT_ROWS = 25
CHART_HOURS = 24
_VERSION = re.compile(r"-(v[0-9]+)$")


def page(ctx: Context) -> Page:
    q = ctx.deps.queries
    unread = q.alerts.find(unread=True)
    failures = [alert for alert in unread if alert.alert_type == "record_failed"]
    dead = [d for d in q.delivery_status.by_status(MAX_RETRIES_EXCEEDED)]
    dead += [d for d in q.delivery_status.by_status(FAILED) if d.dead_letter_reason]
    dead.sort(key=lambda d: d.updated_at or "", reverse=True)
    overdue = q.pending_errors.detected_before(ctx.now - ctx.deps.grace_period)
    versions = [{"family": family, "table": table, "version": (_VERSION.search(table) or [None, "?"])[1]}
                for family, table in sorted(ctx.deps.views.items())]
    return ctx.page("health.html", section="health", title="Health", versions=versions,
                    alerts=unread[:ALERT_ROWS], unread=len(unread),
                    unread_by_severity=Counter(a.severity for a in unread), severities=SEVERITIES,
                    failures=failures, dead=dead, overdue=overdue,
                    grace_minutes=int(ctx.deps.grace_period.total_seconds() // 60),
                    chart=alerts_by_hour(ctx), now=format_time(ctx.now))


def alerts_by_hour(ctx: Context) -> dict[str, Any]:
    """Alerts raised per hour over the last day, by severity: one range query per severity on the
    alerts' by-severity index (time is its sort key), read or not."""
    since = ctx.now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=CHART_HOURS - 1)
    hours = [since + timedelta(hours=n) for n in range(CHART_HOURS)]
    series: dict[str, list[int]] = {}
    for severity in SEVERITIES:
        request = key_query("severity", severity, index="by-severity")
        request["KeyConditionExpression"] += " AND #t >= :since"
        request["ExpressionAttributeNames"]["#t"] = "time"
        request["ExpressionAttributeValues"][":since"] = s(format_time(since))
        counts = Counter(row["time"][:13] for row in ctx.deps.reader.query("alerts", request))
        series[severity] = [counts.get(format_time(hour)[:13], 0) for hour in hours]
    return {"times": [int(hour.timestamp()) for hour in hours], "series": series,
            "total": sum(map(sum, series.values()))}
