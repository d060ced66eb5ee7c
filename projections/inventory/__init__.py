"""The inventory view (seed 004): its fold, its row type ``InventoryItem`` (and the returns history's
``InventoryReturn``) and its questions."""

from projections.inventory.fold import (
    RETURNS_TABLE,
    InventoryItem,
    InventoryProjection,
    InventoryReturn,
    LastBroadcast,
    ListedItem,
)
from projections.inventory.queries import COMMANDS, REPORT, ROUTES, InventoryQueries
from projections.unit import ViewUnit

UNIT = ViewUnit(InventoryProjection, InventoryItem, InventoryQueries, COMMANDS, ROUTES, REPORT)

__all__ = ["RETURNS_TABLE", "UNIT", "InventoryItem", "InventoryProjection", "InventoryQueries", "InventoryReturn",
           "LastBroadcast", "ListedItem"]
