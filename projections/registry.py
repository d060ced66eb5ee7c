"""Every view, by name and by the stream category it folds (one view per category)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from projections.alerts import AlertsProjection
from projections.delivery_status import DeliveryStatusProjection
from projections.inventory import InventoryProjection
from projections.pending_errors import PendingErrorsProjection
from projections.view import View

VIEWS: tuple[View[Any], ...] = (
    InventoryProjection,
    PendingErrorsProjection,
    DeliveryStatusProjection,
    AlertsProjection,
)
VIEWS_BY_NAME: Mapping[str, View[Any]] = {view.name: view for view in VIEWS}
_BY_CATEGORY: Mapping[str, View[Any]] = {view.category: view for view in VIEWS}


def view_for_stream(stream: str) -> View[Any] | None:
    """The view that folds ``<category>:<key>``, or None when no view reads that category."""
    category, sep, _ = stream.partition(":")
    return _BY_CATEGORY.get(category) if sep else None
