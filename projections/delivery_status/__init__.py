"""The webhook delivery status view (seeds 001, 002): its fold, its row type ``DeliveryStatus`` and its questions."""

from projections.delivery_status.fold import (
    FAILED, MAX_RETRIES_EXCEEDED, PENDING, RETRY_SCHEDULED, STATUSES, SUCCESS, AttemptResult, DeliveryStatus,
    DeliveryStatusProjection, RetryEntry,
)
from projections.delivery_status.queries import COMMANDS, REPORT, ROUTES, DeliveryQueries, check_status
from projections.unit import ViewUnit

UNIT = ViewUnit(DeliveryStatusProjection, DeliveryStatus, DeliveryQueries, COMMANDS, ROUTES, REPORT)

__all__ = ["FAILED", "MAX_RETRIES_EXCEEDED", "PENDING", "RETRY_SCHEDULED", "STATUSES", "SUCCESS", "UNIT",
           "AttemptResult", "DeliveryQueries", "DeliveryStatus", "DeliveryStatusProjection", "RetryEntry",
           "check_status"]
