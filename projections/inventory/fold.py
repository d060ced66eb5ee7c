"""The inventory view (seed 004): one row per SKU, plus its returns history.

available = max(0, physical - buffer) is what the storefront may sell.

Shopify (issue 11 §4): our physical count is the truth; Shopify's levels are what it shows. What
it *should* show is our last push's total plus the changes Shopify applied itself since (its
orders, its restocking refunds): ``shopify_expected``. Every term is a sum or a latest-by-time
value, so the row does not depend on the order Shopify's webhooks arrive in
(tests/property/test_shopify_sync_convergence.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from events.envelope import RecordedEvent, format_sequence, format_time
from events.inventory import (
    BufferSet,
    PhysicalCountSet,
    ReturnRecorded,
    ShopifyLevelReported,
    ShopifyPushPlanned,
    ShopifyPushSettled,
    StockAdjusted,
    StockBroadcast,
)
from projections.view import NOT_STORED, Extra, View, ViewRow, single_row_view

RETURNS_TABLE = "inventory-returns"


@dataclass(frozen=True, slots=True)
class LastBroadcast:
    count: int
    tx_id: str
    time: str


@dataclass(frozen=True, slots=True)
class LocationLevel:
    """Shopify's available at one location, as its latest level update said (issue 11 §3)."""

    location_id: str
    available: int | None  # negative: oversold; None: Shopify does not track the item
    updated_at: str  # UTC, one spelling, so it orders as text
    counted: bool
    ours: bool = False  # our own observation (a settled push), not a level Shopify reported


@dataclass(frozen=True, slots=True)
class LastPush:
    """Our latest push to Shopify: it set ``quantity`` at ``location_id`` so that Shopify shows
    ``total`` over the counted locations, when Shopify's own changes summed to ``applied``."""

    push_id: str
    inventory_item_id: str
    location_id: str
    quantity: int
    total: int
    applied: int
    time: str


@dataclass(frozen=True, slots=True)
class OpenDrift:
    """A drift we alerted on, until Shopify changes reported late explain all of it (``left`` 0):
    a sale made after the push that set what Shopify should show (``anchor_at``) and before the
    level that showed the drift (``drift_at``) was missing from what we expected."""

    cause_id: str  # the level event: the sync_drift alert's id derives from it
    drift_at: str
    anchor_at: str | None
    left: int


MAX_OPEN_DRIFTS = 5


def _newer(level: LocationLevel) -> tuple[str, bool, bool, int]:
    """The later updated_at wins; at the same time Shopify's report beats our own observation
    (Shopify's times have whole seconds, so its report of a change in the second of our push may
    be the later one), then the larger value: the result does not depend on the order Shopify's
    webhooks arrive in."""
    return level.updated_at, not level.ours, level.available is not None, level.available or 0


def _whole_second(at: str) -> str:
    """``...T12:21:36.123456Z`` -> ``...T12:21:36.000000Z``: our time at Shopify's precision."""
    return at[:19] + ".000000Z"


@dataclass(frozen=True, kw_only=True)
class InventoryReturn(ViewRow):
    """A row of the returns history (table family ``inventory-returns``), insert-only."""

    sku: str
    returned_at: str  # "<time>#<zero-padded version>": sorts in time order
    time: str | None = None
    quantity: int = 0
    disposition: str | None = None
    order_id: str | None = None
    restocked: bool = False
    event_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class InventoryItem(ViewRow):
    """One SKU: the fold's state, the stored row (plus ``available``) and what the inventory queries return.

    ``new_returns`` are the returns folded since the state was loaded (the view's extras), never stored.
    """

    sku: str
    physical: int = 0
    buffer: int = 0
    last_broadcast: LastBroadcast | None = None
    updated_at: str | None = None
    shopify_levels: tuple[LocationLevel, ...] = ()  # one per location, sorted by location id
    shopify_item_id: str | None = None  # Shopify's inventory item of this SKU, as its levels name it
    shopify_applied: int = 0  # the changes Shopify applied to its own level itself (orders -, restocks +)
    last_push: LastPush | None = None
    open_drifts: tuple[OpenDrift, ...] = ()
    new_returns: tuple[Extra, ...] = field(default=(), repr=False, metadata=NOT_STORED)

    derived = ("available", "shopify_available", "shopify_expected")

    @property
    def available(self) -> int:
        return max(0, self.physical - self.buffer)

    @property
    def shopify_available(self) -> int | None:
        """What Shopify shows over the counted locations (summed); None before any counted level."""
        counted = [level.available for level in self.shopify_levels if level.counted and level.available is not None]
        return sum(counted) if counted else None

    @property
    def shopify_expected(self) -> int | None:
        """What Shopify should show over the counted locations: our last push's total plus what
        Shopify changed itself since. None before our first push."""
        if self.last_push is None:
            return None
        return self.last_push.total + self.shopify_applied - self.last_push.applied

    def level_at(self, location_id: str) -> LocationLevel | None:
        return next((level for level in self.shopify_levels if level.location_id == location_id), None)

    def explained(self, change: StockAdjusted | ReturnRecorded, delta: int) -> InventoryItem:
        """A change Shopify made itself between a drift's anchor push and the level that showed the
        drift, reported only now (its webhook was overtaken by the level's): that much of the drift
        was no drift."""
        occurred = change.occurred_at
        if not self.open_drifts or not change.applied_by_shopify or occurred is None:
            return self
        return replace(self, open_drifts=tuple(
            replace(drift, left=drift.left - delta)
            if drift.left and (drift.anchor_at is None or drift.anchor_at < occurred) and occurred <= drift.drift_at
            else drift
            for drift in self.open_drifts))

    def with_level(self, level: LocationLevel) -> InventoryItem:
        """Keep the newer level of a location (see ``_newer``); levels never change the count."""
        levels = {known.location_id: known for known in self.shopify_levels}
        old = levels.get(level.location_id)
        if old is None or _newer(level) > _newer(old):
            levels[level.location_id] = level
        return replace(self, shopify_levels=tuple(levels[k] for k in sorted(levels)))


def initial(sku: str) -> InventoryItem:
    return InventoryItem(sku=sku)


def apply(state: InventoryItem, event: RecordedEvent) -> InventoryItem:
    data = event.data
    at = format_time(event.time)
    if isinstance(data, PhysicalCountSet):
        return replace(state, physical=data.physical, updated_at=at)
    if isinstance(data, StockAdjusted):
        applied = state.shopify_applied + (data.delta if data.applied_by_shopify else 0)
        return replace(state.explained(data, data.delta), physical=state.physical + data.delta,
                       shopify_applied=applied, updated_at=at)
    if isinstance(data, BufferSet):
        return replace(state, buffer=data.buffer, updated_at=at)
    if isinstance(data, ReturnRecorded):
        returned = Extra(RETURNS_TABLE, InventoryReturn(
            sku=state.sku,
            returned_at=f"{at}#{format_sequence(event.version)}",
            time=at,
            quantity=data.quantity,
            disposition=data.disposition,
            order_id=data.order_id,
            restocked=data.restocked,
            event_id=event.id,
        ).to_row())
        physical = state.physical + (data.quantity if data.restocked else 0)
        applied = state.shopify_applied + (data.quantity if data.applied_by_shopify else 0)
        return replace(state.explained(data, data.quantity), physical=physical, shopify_applied=applied,
                       updated_at=at, new_returns=(*state.new_returns, returned))
    if isinstance(data, ShopifyLevelReported):
        level = LocationLevel(data.location_id, data.available, data.updated_at, data.counted)
        return replace(state.with_level(level), shopify_item_id=data.inventory_item_id, updated_at=at)
    if isinstance(data, ShopifyPushPlanned):
        push = LastPush(data.push_id, data.inventory_item_id, data.location_id, data.quantity, data.total,
                        state.shopify_applied, at)
        drifts = tuple(drift for drift in state.open_drifts if drift.left)
        if data.drift and data.drift_at and event.causation_id:
            anchor = state.last_push.time if state.last_push else None
            drifts = (*drifts, OpenDrift(event.causation_id, data.drift_at, anchor, data.drift))[-MAX_OPEN_DRIFTS:]
        return replace(state, last_push=push, open_drifts=drifts, updated_at=at)
    if isinstance(data, ShopifyPushSettled):
        last = state.last_push
        if last is not None and last.push_id == data.push_id and data.quantity is not None:
            # What Shopify holds there now, as of the settling: a level observation of our own, so
            # level updates Shopify sent before our set (older updated_at) no longer count.
            known = state.level_at(last.location_id)
            observed = LocationLevel(last.location_id, data.quantity, _whole_second(at),
                                     known.counted if known else True, ours=True)
            return replace(state.with_level(observed), last_push=replace(last, quantity=data.quantity), updated_at=at)
        return replace(state, updated_at=at)
    if isinstance(data, StockBroadcast):
        return replace(state, last_broadcast=LastBroadcast(data.count, data.tx_id, at), updated_at=at)
    return state


InventoryProjection: View[InventoryItem] = single_row_view(
    name="inventory",
    table="inventory",
    category="sku",
    key_attr="sku",
    row_type=InventoryItem,
    initial=initial,
    apply=apply,
    shown=lambda state: state.updated_at is not None,
    extras=lambda state: state.new_returns,
    extra_tables=(RETURNS_TABLE,),
)
