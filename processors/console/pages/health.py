"""Health: is everything caught up and healthy? The status service's answer (what `dynafold status`
and `GET /status` say): each reader's lag over the last hour as a chart, failures and dead letters,
alarms in ALARM, active view versions and rebuilds in progress; then what support follows up from
here: unread alerts (mark read), dead-lettered deliveries, order errors past their grace period,
and a box to look up an order, a delivery, a SKU or an event."""

from __future__ import annotations

from collections import Counter

from processors.console.charts import lag_chart
from processors.console.context import Context
from processors.console.web import Page
from projections.alerts import SEVERITIES
from projections.delivery_status.fold import FAILED, MAX_RETRIES_EXCEEDED

ALERT_ROWS = 25


def page(ctx: Context) -> Page:
    from processors.services.status import DEFAULT_WINDOW, period_for

    status = ctx.deps.services.status().status(DEFAULT_WINDOW)
    q = ctx.deps.queries
    unread = q.alerts.find(unread=True)
    dead = [d for d in q.delivery_status.by_status(MAX_RETRIES_EXCEEDED)]
    dead += [d for d in q.delivery_status.by_status(FAILED) if d.dead_letter_reason]
    dead.sort(key=lambda d: d.updated_at or "", reverse=True)
    overdue = q.pending_errors.detected_before(ctx.now - ctx.deps.grace_period)
    chart = lag_chart({reader.title: reader.reading.lag for reader in status.readers}, status.checked_at,
                      status.window, period_for(status.window))
    return ctx.page("health.html", section="health", title="Health", health=status, chart=chart,
                    alerts=unread[:ALERT_ROWS], unread=len(unread),
                    unread_by_severity=Counter(a.severity for a in unread), severities=SEVERITIES,
                    dead=dead, overdue=overdue,
                    grace_minutes=int(ctx.deps.grace_period.total_seconds() // 60))
