"""SyncState inventory (seed 004): physical count, buffer, returns, broadcasts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.schema_base import EventData
from events.shopify_items import MapSource, ShopifyId

Disposition = Literal["SELLABLE", "DAMAGED", "UNSELLABLE", "DEFECTIVE", "MISSING"]


class PhysicalCountSet(EventData):
    sku: str = Field(min_length=1)
    physical: int = Field(ge=0)
    source: Literal["admin", "shopify", "count"] = "admin"


class StockAdjustedV1(EventData):
    """Legacy shape (SyncState phase 1-2 imports): a bare signed quantity change."""

    sku: str = Field(min_length=1)
    quantity_change: int


class StockAdjusted(EventData):
    sku: str = Field(min_length=1)
    delta: int
    reason: Literal["order", "restock", "correction", "unspecified"] = "unspecified"
    tx_id: str | None = None
    order_id: str | None = None
    applied_by_shopify: bool = Field(default=False, description=(
        "Shopify already applied this change to its own level (its order): the level it shows moves "
        "with it, so it is not drift and needs no push"))
    occurred_at: str | None = Field(default=None, max_length=64, description=(
        "Shopify's time of the change (the order's created_at, UTC), when Shopify made it"))
    by_variant: dict[ShopifyId, int] = Field(default_factory=dict, max_length=10_000, description=(
        "the change per Shopify variant (the order's lines), when Shopify made it: which of the SKU's "
        "listings (items sharing the SKU) Shopify changed"))


class BufferSet(EventData):
    sku: str = Field(min_length=1)
    buffer: int = Field(ge=0)


class ReturnRecorded(EventData):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    disposition: Disposition
    order_id: str | None = None
    restocked: bool = Field(description="sellable returns go back on the shelf")
    applied_by_shopify: bool = Field(default=False, description=(
        "Shopify restocked the quantity at its own location (refund restock_type return/cancel/"
        "legacy_restock): its level already went up by it"))
    occurred_at: str | None = Field(default=None, max_length=64, description=(
        "Shopify's time of the refund (its created_at, UTC), when it came from Shopify"))
    variant_id: ShopifyId | None = Field(default=None, description=(
        "the refunded line's Shopify variant: which of the SKU's listings Shopify restocked"))


class StockBroadcast(EventData):
    sku: str = Field(min_length=1)
    count: int = Field(ge=0)
    tx_id: str = Field(min_length=1, description="lets the storefront's echo be recognised")


class ShopifyLevelReported(EventData):
    """Shopify's ``available`` at one location (an ``inventory_levels/update``). Recorded, never
    counted into the physical count: our count is the truth (seed 004); the level is what Shopify
    shows, compared with what it should show (drift)."""

    sku: str = Field(min_length=1)
    inventory_item_id: str = Field(min_length=1, max_length=30)
    location_id: str = Field(min_length=1, max_length=30)
    available: int | None = Field(description="negative when oversold; null when Shopify does not track the item")
    updated_at: str = Field(min_length=1, max_length=64, description="Shopify's time of the level, orders levels")
    counted: bool = Field(description="whether the location is one of the configured counted locations")


class ShopifyPushPlanned(EventData):
    """We set Shopify's ``available`` at one location (GraphQL Admin ``inventorySetQuantities``,
    compare-and-set against ``compare_quantity``) so that Shopify shows ``total`` over the counted
    locations: our available count, the truth (seed 004). Decided by the reactor
    (projections/reactor/rules/shopify_sync.py), carried out once per ``push_id`` by the reactor's push effect."""

    sku: str = Field(min_length=1)
    push_id: str = Field(min_length=1, max_length=64)
    inventory_item_id: str = Field(min_length=1, max_length=30)
    location_id: str = Field(min_length=1, max_length=30)
    quantity: int = Field(ge=0, le=1_000_000_000)
    compare_quantity: int | None = Field(description="the level we believe Shopify holds there now")
    total: int = Field(description="what Shopify should show over the counted locations after the push")
    drift: int | None = Field(default=None, description="shown - expected, when a drift caused the push")
    drift_at: str | None = Field(default=None, max_length=64,
                                 description="Shopify's time of the level that showed the drift")


class ShopifyPushSettled(EventData):
    """What became of a push: ``applied`` (Shopify now holds ``quantity`` there; after a compare
    mismatch the push is re-decided, so it may differ from the planned one), ``already_applied``
    (Shopify held it: a repeated push) or ``failed`` (refused, or still throttled; ``detail`` says)."""

    sku: str = Field(min_length=1)
    push_id: str = Field(min_length=1, max_length=64)
    outcome: Literal["applied", "already_applied", "failed"]
    quantity: int | None = None
    attempts: int = Field(ge=0)
    detail: str = Field(default="", max_length=1000)


class ShopifyItemLinked(EventData):
    """A Shopify inventory item was mapped to this SKU: one more listing of the SKU's one stock pool
    (Shopify does not enforce unique SKUs: several variants may carry it). Appended with the item's
    ``item mapped``, so the SKU's row knows its listings and their variants."""

    sku: str = Field(min_length=1)
    inventory_item_id: ShopifyId
    variant_id: ShopifyId | None = None
    source: MapSource


class ShopifyItemUnlinked(EventData):
    """A Shopify inventory item no longer names this SKU (its SKU was blanked, changed, or the item
    deleted): it is no longer pushed, and its later levels are kept as unmapped (or on its new SKU)."""

    sku: str = Field(min_length=1)
    inventory_item_id: ShopifyId
    now_sku: str | None = Field(default=None, description="the SKU the item names now; None: none")
    source: MapSource


class AdoptedLevel(EventData):
    """One level an adoption read: what Shopify last reported for an item at a counted location."""

    inventory_item_id: ShopifyId
    location_id: ShopifyId
    available: int
    updated_at: str = Field(min_length=1, max_length=64)


class ShopifyCountAdopted(EventData):
    """Onboarding: a SKU never counted here takes Shopify's level as its initial physical count
    (``dynafold shopify adopt``), instead of our pushes setting Shopify to 0. ``levels`` are the
    counted levels of the item the count was taken from (``from_item``), as Shopify last reported
    them; ``other_items`` lists the SKU's other listings' levels, which agreed or were overruled."""

    sku: str = Field(min_length=1)
    physical: int = Field(ge=0)
    from_item: ShopifyId
    levels: tuple[AdoptedLevel, ...] = Field(min_length=1, max_length=1000)
    other_items: tuple[AdoptedLevel, ...] = Field(default=(), max_length=10_000)
    adopted_by: str = Field(min_length=1, max_length=200, description="who adopted: the CLI's user or the API request")
