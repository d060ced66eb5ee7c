"""The inventory view (seed 004): one row per SKU, plus its returns history.

available = max(0, physical - buffer) is what the storefront may sell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from events.envelope import RecordedEvent, format_sequence, format_time
from events.inventory import (
    BufferSet,
    PhysicalCountSet,
    ReturnRecorded,
    ShopifyLevelReported,
    StockAdjusted,
    StockBroadcast,
)
from projections.view import Extra, Row, View

RETURNS_TABLE = "inventory-returns"


@dataclass(frozen=True, slots=True)
class Broadcast:
    count: int
    tx_id: str
    time: str


@dataclass(frozen=True, slots=True)
class Level:
    """Shopify's available at one location, as its latest level update said (issue 11 §3)."""

    available: int | None  # negative: oversold; None: Shopify does not track the item
    updated_at: str  # UTC, one spelling, so it orders as text
    counted: bool


@dataclass(frozen=True, slots=True)
class InventoryState:
    sku: str
    physical: int = 0
    buffer: int = 0
    last_broadcast: Broadcast | None = None
    updated_at: str | None = None
    new_returns: tuple[Extra, ...] = ()
    levels: tuple[tuple[str, Level], ...] = ()  # (location id, level), sorted by location

    @property
    def available(self) -> int:
        return max(0, self.physical - self.buffer)

    @property
    def shopify_available(self) -> int | None:
        """What Shopify shows over the counted locations (summed); None before any counted level."""
        counted = [level.available for _, level in self.levels if level.counted and level.available is not None]
        return sum(counted) if counted else None

    def with_level(self, location_id: str, level: Level) -> "InventoryState":
        """Keep the newer level of a location: the later updated_at, then the larger value, so the
        result does not depend on the order Shopify's webhooks arrive in."""
        levels = dict(self.levels)
        old = levels.get(location_id)
        if old is None or _order(level) > _order(old):
            levels[location_id] = level
        return replace(self, levels=tuple(sorted(levels.items())))


def _order(level: Level) -> tuple[str, bool, int]:
    return level.updated_at, level.available is not None, level.available or 0


def initial(sku: str) -> InventoryState:
    return InventoryState(sku=sku)


def apply(state: InventoryState, event: RecordedEvent) -> InventoryState:
    data = event.data
    at = format_time(event.time)
    if isinstance(data, PhysicalCountSet):
        return replace(state, physical=data.physical, updated_at=at)
    if isinstance(data, StockAdjusted):
        return replace(state, physical=state.physical + data.delta, updated_at=at)
    if isinstance(data, BufferSet):
        return replace(state, buffer=data.buffer, updated_at=at)
    if isinstance(data, ReturnRecorded):
        returned = Extra(RETURNS_TABLE, {
            "sku": state.sku,
            "returned_at": f"{at}#{format_sequence(event.version)}",
            "time": at,
            "quantity": data.quantity,
            "disposition": data.disposition,
            "order_id": data.order_id,
            "restocked": data.restocked,
            "event_id": event.id,
        })
        physical = state.physical + (data.quantity if data.restocked else 0)
        return replace(state, physical=physical, updated_at=at, new_returns=(*state.new_returns, returned))
    if isinstance(data, ShopifyLevelReported):
        level = Level(data.available, data.updated_at, data.counted)
        return replace(state.with_level(data.location_id, level), updated_at=at)
    if isinstance(data, StockBroadcast):
        return replace(state, last_broadcast=Broadcast(data.count, data.tx_id, at), updated_at=at)
    return state


def rows(state: InventoryState) -> Mapping[str | None, Row]:
    if state.updated_at is None:
        return {}
    broadcast = state.last_broadcast
    return {None: {
        "physical": state.physical,
        "buffer": state.buffer,
        "available": state.available,
        "last_broadcast": None if broadcast is None else
        {"count": broadcast.count, "tx_id": broadcast.tx_id, "time": broadcast.time},
        "updated_at": state.updated_at,
        "shopify_available": state.shopify_available,
        "shopify_levels": {location: {"available": level.available, "updated_at": level.updated_at,
                                      "counted": level.counted} for location, level in state.levels},
    }}


def load(sku: str, stored: Mapping[str | None, Row]) -> InventoryState:
    row = stored.get(None)
    if row is None:
        return initial(sku)
    broadcast: Any = row.get("last_broadcast")
    return InventoryState(
        sku=sku,
        physical=int(row["physical"]),
        buffer=int(row["buffer"]),
        last_broadcast=None if not broadcast else
        Broadcast(int(broadcast["count"]), broadcast["tx_id"], broadcast["time"]),
        updated_at=row["updated_at"],
        levels=tuple(sorted((str(location), Level(None if level.get("available") is None else int(level["available"]),
                                                  str(level["updated_at"]), bool(level["counted"])))
                            for location, level in (row.get("shopify_levels") or {}).items())),
    )


InventoryProjection: View[InventoryState] = View(
    name="inventory",
    table="inventory",
    category="sku",
    key_attr="sku",
    sort_attr=None,
    initial=initial,
    apply=apply,
    rows=rows,
    load=load,
    extras=lambda state: state.new_returns,
    extra_tables=(RETURNS_TABLE,),
)
