"""The inventory view (seed 004): one row per SKU, plus its returns history.

available = max(0, physical - buffer) is what the storefront may sell. A SKU is ``counted`` once a
physical count was set here (a stock take, an admin count, or an adoption of Shopify's level);
before that it is ``uncounted`` and nothing is pushed for it (issue 18 §1).

Shopify (issue 11 §4, issue 18 §2): our physical count is the truth; each Shopify inventory item
mapped to the SKU is one *listing* of that one stock pool (Shopify does not enforce unique SKUs),
kept apart in ``shopify_items``: its levels per location, our last push to it, and the changes
Shopify applied to it itself. What an item *should* show is our last push's total plus those
changes since: ``ListedItem.expected``. Every term is a sum or a latest-by-time value, so the row
does not depend on the order Shopify's webhooks arrive in
(tests/property/test_shopify_sync_convergence.py).

A change Shopify made itself (an order, a restocking refund) is attributed to the listing whose
variant it names (``by_variant``, ``variant_id``); a SKU with one listing takes every change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from events.envelope import RecordedEvent, format_sequence, format_time
from events.inventory import (
    BufferSet,
    PhysicalCountSet,
    ReturnRecorded,
    ShopifyCountAdopted,
    ShopifyItemLinked,
    ShopifyItemUnlinked,
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
    """Our latest push to one item: it set ``quantity`` at ``location_id`` so that the item shows
    ``total`` over the counted locations, when Shopify's own changes to it summed to ``applied``.
    ``outcome`` is None until the push settled (then applied, already_applied or failed)."""

    push_id: str
    inventory_item_id: str
    location_id: str
    quantity: int
    total: int
    applied: int
    time: str
    compare_quantity: int | None = None
    drift: int | None = None
    cause_id: str | None = None  # the event the push answered
    outcome: str | None = None
    detail: str = ""
    settled_at: str | None = None


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


@dataclass(frozen=True, slots=True)
class ListedItem:
    """One Shopify inventory item mapped to the SKU: a listing of the SKU's stock pool, tracked on
    its own so that no item's level overwrites another's (issue 18 §2)."""

    inventory_item_id: str
    variant_id: str | None = None
    levels: tuple[LocationLevel, ...] = ()  # one per location, sorted by location id
    applied: int = 0  # the changes Shopify applied to this item itself (orders -, restocks +)
    last_push: LastPush | None = None
    open_drifts: tuple[OpenDrift, ...] = ()

    @property
    def available(self) -> int | None:
        """What Shopify shows for this item over the counted locations (summed); None before any counted level."""
        counted = [level.available for level in self.levels if level.counted and level.available is not None]
        return sum(counted) if counted else None

    @property
    def expected(self) -> int | None:
        """What the item should show over the counted locations: our last push's total plus what
        Shopify changed on it itself since. None before our first push to it."""
        if self.last_push is None:
            return None
        return self.last_push.total + self.applied - self.last_push.applied

    def level_at(self, location_id: str) -> LocationLevel | None:
        return next((level for level in self.levels if level.location_id == location_id), None)

    def with_level(self, level: LocationLevel) -> ListedItem:
        """Keep the newer level of a location (see ``_newer``); levels never change the count."""
        levels = {known.location_id: known for known in self.levels}
        old = levels.get(level.location_id)
        if old is None or _newer(level) > _newer(old):
            levels[level.location_id] = level
        return replace(self, levels=tuple(levels[k] for k in sorted(levels)))

    def explained(self, occurred: str | None, delta: int) -> ListedItem:
        """A change Shopify made itself on this item between a drift's anchor push and the level
        that showed the drift, reported only now (its webhook was overtaken by the level's): that
        much of the drift was no drift."""
        if not self.open_drifts or occurred is None:
            return self
        return replace(self, open_drifts=tuple(
            replace(drift, left=drift.left - delta)
            if drift.left and (drift.anchor_at is None or drift.anchor_at < occurred) and occurred <= drift.drift_at
            else drift
            for drift in self.open_drifts))


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
    """One SKU: the fold's state, the stored row (plus ``available`` and ``uncounted``) and what the
    inventory queries return.

    ``new_returns`` are the returns folded since the state was loaded (the view's extras), never stored.
    """

    sku: str
    physical: int = 0
    buffer: int = 0
    counted: bool = False  # a physical count was set here (count, stock take or adoption)
    last_broadcast: LastBroadcast | None = None
    updated_at: str | None = None
    shopify_items: tuple[ListedItem, ...] = ()  # the SKU's listings in Shopify, sorted by item id
    unlisted_items: tuple[str, ...] = ()  # items that stopped naming the SKU: their late levels are not its
    new_returns: tuple[Extra, ...] = field(default=(), repr=False, metadata=NOT_STORED)

    derived = ("available", "uncounted")

    @property
    def available(self) -> int:
        return max(0, self.physical - self.buffer)

    @property
    def uncounted(self) -> bool:
        """Never counted here: Shopify's levels are shown, nothing is pushed (``dynafold shopify adopt``)."""
        return not self.counted

    def item(self, inventory_item_id: str) -> ListedItem | None:
        return next((item for item in self.shopify_items if item.inventory_item_id == inventory_item_id), None)

    def with_item(self, item: ListedItem) -> InventoryItem:
        items = {known.inventory_item_id: known for known in self.shopify_items}
        items[item.inventory_item_id] = item
        return replace(self, shopify_items=tuple(items[k] for k in sorted(items)))

    def to_dict(self) -> dict[str, Any]:
        """The row, with what each item shows and should show (derived, never stored)."""
        shown = super().to_dict()
        shown["shopify_items"] = [{**row, "shopify_available": item.available, "shopify_expected": item.expected}
                                  for row, item in zip(shown["shopify_items"], self.shopify_items, strict=True)]
        return shown


def attribution(state: InventoryItem, data: StockAdjusted | ReturnRecorded) -> dict[str, int]:
    """Which listings a change Shopify applied itself moved, and by how much: by the variants it
    names; what names no listed variant goes to the SKU's only listing (none when there are
    several: which one moved is unknown). Empty for our own changes."""
    if not data.applied_by_shopify:
        return {}
    if isinstance(data, StockAdjusted):
        parts: dict[str | None, int] = {variant: delta for variant, delta in data.by_variant.items()}
        parts[None] = data.delta - sum(data.by_variant.values())
    else:
        parts = {data.variant_id: data.quantity}
    by_variant = {item.variant_id: item.inventory_item_id for item in state.shopify_items if item.variant_id}
    only = state.shopify_items[0].inventory_item_id if len(state.shopify_items) == 1 else None
    moved: dict[str, int] = {}
    for variant, delta in parts.items():
        target = by_variant.get(variant) if variant is not None else None
        target = target or only
        if target is not None and delta:
            moved[target] = moved.get(target, 0) + delta
    return moved


def _shopify_changed(state: InventoryItem, data: StockAdjusted | ReturnRecorded) -> InventoryItem:
    for item_id, delta in attribution(state, data).items():
        item = state.item(item_id)
        if item is not None:
            state = state.with_item(replace(item.explained(data.occurred_at, delta), applied=item.applied + delta))
    return state


def _linked(state: InventoryItem, data: ShopifyItemLinked) -> InventoryItem:
    known = state.item(data.inventory_item_id) or ListedItem(data.inventory_item_id)
    listed = replace(known, variant_id=data.variant_id or known.variant_id)
    unlisted = tuple(item for item in state.unlisted_items if item != data.inventory_item_id)
    return replace(state.with_item(listed), unlisted_items=unlisted)


def _unlinked(state: InventoryItem, data: ShopifyItemUnlinked) -> InventoryItem:
    items = tuple(item for item in state.shopify_items if item.inventory_item_id != data.inventory_item_id)
    unlisted = tuple(sorted({*state.unlisted_items, data.inventory_item_id}))
    return replace(state, shopify_items=items, unlisted_items=unlisted)


def _level(state: InventoryItem, data: ShopifyLevelReported) -> InventoryItem:
    if data.inventory_item_id in state.unlisted_items:
        return state  # planned before the item stopped naming this SKU: not this SKU's level
    item = state.item(data.inventory_item_id) or ListedItem(data.inventory_item_id)
    return state.with_item(item.with_level(LocationLevel(data.location_id, data.available, data.updated_at,
                                                         data.counted)))


def _planned(state: InventoryItem, data: ShopifyPushPlanned, event: RecordedEvent, at: str) -> InventoryItem:
    item = state.item(data.inventory_item_id)
    if item is None:
        return state
    push = LastPush(data.push_id, data.inventory_item_id, data.location_id, data.quantity, data.total,
                    item.applied, at, data.compare_quantity, data.drift, event.causation_id)
    drifts = tuple(drift for drift in item.open_drifts if drift.left)
    if data.drift and data.drift_at and event.causation_id:
        anchor = item.last_push.time if item.last_push else None
        drifts = (*drifts, OpenDrift(event.causation_id, data.drift_at, anchor, data.drift))[-MAX_OPEN_DRIFTS:]
    return state.with_item(replace(item, last_push=push, open_drifts=drifts))


def _settled(state: InventoryItem, data: ShopifyPushSettled, at: str) -> InventoryItem:
    item = next((item for item in state.shopify_items
                 if item.last_push is not None and item.last_push.push_id == data.push_id), None)
    if item is None or item.last_push is None:
        return state  # a push another push replaced before it settled
    last = replace(item.last_push, outcome=data.outcome, detail=data.detail, settled_at=at)
    if data.quantity is not None:
        # What Shopify holds there now, as of the settling: a level observation of our own, so
        # level updates Shopify sent before our set (older updated_at) no longer count.
        known = item.level_at(last.location_id)
        observed = LocationLevel(last.location_id, data.quantity, _whole_second(at),
                                 known.counted if known else True, ours=True)
        item = item.with_level(observed)
        last = replace(last, quantity=data.quantity)
    return state.with_item(replace(item, last_push=last))


def explained_drifts(before: InventoryItem, after: InventoryItem) -> list[str]:
    """The drifts (their level events' ids) that one event explained all of: Shopify's own change,
    reported after the level that showed the drift, accounts for what was left of it."""
    still_open = {drift.cause_id for item in before.shopify_items for drift in item.open_drifts if drift.left}
    return [drift.cause_id for item in after.shopify_items for drift in item.open_drifts
            if not drift.left and drift.cause_id in still_open]


def initial(sku: str) -> InventoryItem:
    return InventoryItem(sku=sku)


def apply(state: InventoryItem, event: RecordedEvent) -> InventoryItem:
    data = event.data
    at = format_time(event.time)
    if isinstance(data, (PhysicalCountSet, ShopifyCountAdopted)):
        return replace(state, physical=data.physical, counted=True, updated_at=at)
    if isinstance(data, StockAdjusted):
        return replace(_shopify_changed(state, data), physical=state.physical + data.delta, updated_at=at)
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
        return replace(_shopify_changed(state, data), physical=physical, updated_at=at,
                       new_returns=(*state.new_returns, returned))
    if isinstance(data, ShopifyLevelReported):
        return replace(_level(state, data), updated_at=at)
    if isinstance(data, ShopifyItemLinked):
        return replace(_linked(state, data), updated_at=at)
    if isinstance(data, ShopifyItemUnlinked):
        return replace(_unlinked(state, data), updated_at=at)
    if isinstance(data, ShopifyPushPlanned):
        return replace(_planned(state, data, event, at), updated_at=at)
    if isinstance(data, ShopifyPushSettled):
        return replace(_settled(state, data, at), updated_at=at)
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
