"""Every view, by name and by the stream category it folds (one view per category).

One line per view: its package's ``UNIT`` carries the fold (with its table family), its row type,
its queries, its `dynafold query` commands, its HTTP read routes and its report sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from projections import alerts, delivery_status, inventory, pending_errors
from projections.unit import ViewUnit
from projections.view import View

UNITS: tuple[ViewUnit, ...] = (
    inventory.UNIT,
    pending_errors.UNIT,
    delivery_status.UNIT,
    alerts.UNIT,
)
VIEWS: tuple[View[Any], ...] = tuple(unit.view for unit in UNITS)
VIEWS_BY_NAME: Mapping[str, View[Any]] = {view.name: view for view in VIEWS}
UNITS_BY_NAME: Mapping[str, ViewUnit] = {unit.name: unit for unit in UNITS}

# Every name a view goes by: its own, its table families' (`dynafold views`), and its query
# commands' with their aliases (`dynafold query delivery` asks the delivery-status view).
VIEW_NAMES: Mapping[str, View[Any]] = {
    name: unit.view for unit in UNITS
    for name in (unit.name, *unit.view.families, *(n for c in unit.commands for n in (c.name, *c.aliases)))}

_BY_CATEGORY: Mapping[str, View[Any]] = {view.category: view for view in VIEWS}


def view_for_stream(stream: str) -> View[Any] | None:
    """The view that folds ``<category>:<key>``, or None when no view reads that category."""
    category, sep, _ = stream.partition(":")
    return _BY_CATEGORY.get(category) if sep else None
