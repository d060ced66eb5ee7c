"""SyncState inventory (seed 004): physical count, buffer, returns, broadcasts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.schema_base import EventData

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
