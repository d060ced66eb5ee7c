"""Shopify's inventory items and our SKUs (issue 11 §1). Pure: models, the stream, the current map.

Shopify's ``inventory_levels/update`` names an ``inventory_item_id`` and never a SKU, so dynafold
keeps which SKU each inventory item is. Each item is its own stream ``shopifyitem:<id>``: learned
from ``products/*`` (each variant's ``inventory_item_id`` and ``sku``) and ``inventory_items/*``
webhooks, or set by an operator (admin route, CLI, bulk import). The last mapping event wins.

A level update for an item with no SKU yet is recorded in the item's stream (nothing is lost;
once mapped, the next level update counts) and raises one ``unmapped_item`` alert per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from events.envelope import RecordedEvent
from events.schema_base import EventData

ITEM_CATEGORY = "shopifyitem"
MapSource = Literal["products", "inventory_items", "admin", "import"]
_MAX_ID_DIGITS = 30


def shopify_id(value: Any) -> str:
    """A Shopify numeric id as text: 808950810, "808950810" or "gid://shopify/InventoryItem/808950810".

    Kept as text because real ids (e.g. 271878346596884015) exceed what JSON readers that use
    doubles keep exactly, and our stream keys are text anyway."""
    if isinstance(value, bool):
        raise ValueError("must be a Shopify id (a positive integer)")
    text = str(value).strip()
    if text.startswith("gid://shopify/"):
        text = text.rsplit("/", 1)[-1].split("?", 1)[0]
    if not text.isdigit() or not 0 < len(text) <= _MAX_ID_DIGITS or int(text) == 0:
        raise ValueError(f"must be a Shopify id (a positive integer), got {value!r}")
    return str(int(text))


ShopifyId = Annotated[str, BeforeValidator(shopify_id), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
     "description": 'a Shopify id: 808950810, "808950810" or "gid://shopify/InventoryItem/808950810"'},
    mode="validation")]
# As recorded: looser than the rule new SKUs are checked by where they enter (events.skus), so
# that item mapped events written before it still decode.
RecordedSku = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f]+$")]


class ItemMapped(EventData):
    inventory_item_id: ShopifyId
    sku: RecordedSku
    variant_id: ShopifyId | None = None
    source: MapSource


class ItemUnmapped(EventData):
    inventory_item_id: ShopifyId
    source: MapSource


class UnmappedLevelReceived(EventData):
    """A level update for an item with no SKU: kept, counted, alerted once per item."""

    inventory_item_id: ShopifyId
    location_id: ShopifyId
    available: int | None
    updated_at: str | None = None
    event_key: str = Field(min_length=1, max_length=200, description="the webhook's X-Shopify-Event-Id")


def item_stream(inventory_item_id: str) -> str:
    return f"{ITEM_CATEGORY}:{inventory_item_id}"


def current_sku(events: Sequence[RecordedEvent]) -> str | None:
    """The item's SKU after its stream's events: the last mapping wins, a deletion clears it."""
    sku: str | None = None
    for event in events:
        if isinstance(event.data, ItemMapped):
            sku = event.data.sku
        elif isinstance(event.data, ItemUnmapped):
            sku = None
    return sku


def current_variant(events: Sequence[RecordedEvent]) -> str | None:
    variant: str | None = None
    for event in events:
        if isinstance(event.data, ItemMapped):
            variant = event.data.variant_id or variant
    return variant
