"""ErrorMonitorFunction (seed 000): every 5 minutes, one email per order whose errors outlived the grace period.

Thin: runs ``services.error_monitor.ErrorMonitor`` (built by the composition root) and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from processors.services.error_monitor import SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCE, ErrorMonitor, logger, metrics


def make_handler(monitor: ErrorMonitor) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Only the schedule may start a run (it sends emails): any other invocation does nothing.
        source = event.get("source") if isinstance(event, dict) else None
        detail_type = event.get("detail-type") if isinstance(event, dict) else None
        if source != SCHEDULE_SOURCE or detail_type != SCHEDULE_DETAIL_TYPE:
            logger.error("refused: not an EventBridge scheduled event; nothing was checked or sent",
                         extra={"event_source": str(source)[:100], "detail_type": str(detail_type)[:100]})
            metrics.add_metric(name="MonitorInvocationsRefused", unit=MetricUnit.Count, value=1)
            return {"refused": f"expected source {SCHEDULE_SOURCE!r} and detail-type {SCHEDULE_DETAIL_TYPE!r}"}
        if event.get("id"):
            logger.set_correlation_id(str(event["id"]))  # the EventBridge schedule's event id
        outcomes = monitor.run()
        metrics.add_metric(name="MonitorRuns", unit=MetricUnit.Count, value=1)  # "is it running?" has data
        for outcome, count in outcomes.items():
            metrics.add_metric(name=f"MonitorOrders_{outcome}", unit=MetricUnit.Count, value=count)
        logger.info("monitor run", extra={"outcomes": dict(outcomes)})
        return {"outcomes": dict(outcomes)}

    return handler
