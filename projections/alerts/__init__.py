"""The alerts view (seeds 003, 004): its fold, its row type ``Alert`` and its questions."""

from projections.alerts.fold import SEVERITIES, UNREAD, Alert, AlertsProjection
from projections.alerts.queries import COMMANDS, REPORT, ROUTES, AlertQueries, check_severity
from projections.unit import ViewUnit

UNIT = ViewUnit(AlertsProjection, Alert, AlertQueries, COMMANDS, ROUTES, REPORT)

__all__ = ["SEVERITIES", "UNIT", "UNREAD", "Alert", "AlertQueries", "AlertsProjection", "check_severity"]
