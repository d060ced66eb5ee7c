"""The pending order errors view (seed 000): its fold, its row type ``PendingError`` and its questions."""

from projections.pending_errors.fold import PENDING, TTL, PendingError, PendingErrorsProjection, PendingErrorsState
from projections.pending_errors.queries import COMMANDS, REPORT, ROUTES, PendingErrorQueries
from projections.unit import ViewUnit

UNIT = ViewUnit(PendingErrorsProjection, PendingError, PendingErrorQueries, COMMANDS, ROUTES, REPORT)

__all__ = ["PENDING", "TTL", "UNIT", "PendingError", "PendingErrorQueries", "PendingErrorsProjection",
           "PendingErrorsState"]
