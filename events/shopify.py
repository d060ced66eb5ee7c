"""Shopify webhooks (seed 004, issue 11) turned into events. Pure: payloads in, planned appends out.

Payload models follow Shopify's real bodies (tests/fixtures/shopify, sources in its README) and
keep only the fields dynafold uses; a webhook is Shopify's document, not one of our events.

- ``orders/create``: one ``stock adjusted`` per SKU (lines of one SKU summed), tx id = the order.
- ``refunds/create``: one ``return recorded`` per refunded line, with a disposition (an explicit
  ``disposition`` on the line wins; else Shopify's ``restock_type``: return/cancel/legacy_restock
  mean the goods went back on the shelf, no_restock means they did not). Sellable returns restock.
- ``inventory_levels/update``: Shopify's ``available`` at one location for an inventory item (no
  SKU, no id of ours). Recorded as ``shopify level`` on the item's SKU (see events.shopify_items);
  it never changes our physical count, which is the truth. Negative (oversold) and null
  (untracked) levels are recorded as they are.
- ``products/create|update``, ``inventory_items/create|update|delete``: teach the item -> SKU map.
  A variant or inventory item with a blank (or no) SKU names none: the item is unmapped. Each
  change is also told to the SKUs concerned (``shopify item linked``/``unlinked``): several items
  may share a SKU, and each is a listing of its one stock pool.
- ``customers/data_request``, ``customers/redact``, ``shop/redact``: Shopify's mandatory privacy
  webhooks (``PRIVACY_PAYLOADS``). dynafold keeps no Shopify customer fields at all (an order is
  its id and lines); a customer is the data subject ``shopify-customer:<id>``, and the webhooks
  forget it or ask the operator for an export (``processors.api.privacy``).

One webhook is one decision (``plan_parts``): everything it causes, across SKUs, is appended in
one transaction guarded by one key, split into deterministic, individually idempotent parts only
when it exceeds one transaction. The key is the effect's (``effect_key``): an order's effect is
keyed by the order, a refund's by the refund, whatever delivery brought it (two subscriptions to a
topic, a re-registered webhook, a replay); other topics by the webhook's ``X-Shopify-Event-Id``.

Every SKU in a payload is checked by the one SKU rule (``events.skus``) while the body is parsed,
so a webhook with one unusable SKU is refused whole, before anything is appended.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.envelope import NewEvent, PlannedAppend, format_time
from events.idempotency_keys import shopify_delivery_key, shopify_effect_key
from events.inventory import (
    Disposition,
    ReturnRecorded,
    ShopifyItemLinked,
    ShopifyItemUnlinked,
    ShopifyLevelReported,
    StockAdjusted,
)
from events.shopify_items import (
    ItemMapped,
    ItemUnmapped,
    MapSource,
    ShopifyId,
    UnmappedLevelReceived,
    item_stream,
)
from events.skus import OptionalSku

SOURCE = "urn:dynafold:shopify"
TOPICS = ("orders/create", "refunds/create", "inventory_levels/update", "products/create", "products/update",
          "inventory_items/create", "inventory_items/update", "inventory_items/delete",
          "customers/data_request", "customers/redact", "shop/redact")
MAX_LINES = 10_000  # far beyond a real order; a larger webhook is split into parts, never refused


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class LineItem(_Payload):
    sku: OptionalSku = None
    quantity: int = Field(ge=0, le=1_000_000)
    variant_id: ShopifyId | None = None


class OrderCreated(_Payload):
    id: ShopifyId
    name: str | None = None
    created_at: AwareDatetime | None = None
    line_items: tuple[LineItem, ...] = Field(default=(), max_length=MAX_LINES)


class RefundedProduct(_Payload):
    sku: OptionalSku = None
    variant_id: ShopifyId | None = None


class RefundLineItem(_Payload):
    quantity: int = Field(gt=0, le=1_000_000)
    restock_type: Literal["return", "cancel", "no_restock", "legacy_restock"] | None = None
    disposition: Disposition | None = None
    line_item: RefundedProduct


class RefundCreated(_Payload):
    id: ShopifyId
    order_id: ShopifyId
    created_at: AwareDatetime | None = None
    refund_line_items: tuple[RefundLineItem, ...] = Field(default=(), max_length=MAX_LINES)


class InventoryLevelUpdated(_Payload):
    """https://shopify.dev/docs/api/webhooks (inventory_levels/update): the InventoryLevel resource."""

    inventory_item_id: ShopifyId
    location_id: ShopifyId
    available: int | None = Field(ge=-100_000_000, le=100_000_000)
    updated_at: AwareDatetime | None = None


class Variant(_Payload):
    id: ShopifyId
    sku: OptionalSku = None
    inventory_item_id: ShopifyId | None = None


class Product(_Payload):
    id: ShopifyId
    variants: tuple[Variant, ...] = Field(default=(), max_length=MAX_LINES)


class InventoryItem(_Payload):
    id: ShopifyId
    sku: OptionalSku = None


class InventoryItemDeleted(_Payload):
    id: ShopifyId


class PrivacyCustomer(_Payload):
    """The customer a privacy webhook is about: only the id is read (email and phone are ignored)."""

    id: ShopifyId | None = None


class DataRequestRef(_Payload):
    id: ShopifyId


class _ShopRequest(_Payload):
    shop_id: ShopifyId
    shop_domain: str = Field(min_length=1, max_length=255)


class _CustomerRequest(_ShopRequest):
    customer: PrivacyCustomer


class CustomerDataRequest(_CustomerRequest):
    """``customers/data_request``: a customer asked the merchant for their data."""

    orders_requested: tuple[ShopifyId, ...] = Field(default=(), max_length=MAX_LINES)
    data_request: DataRequestRef


class CustomerRedact(_CustomerRequest):
    """``customers/redact``: erase a customer's data."""

    orders_to_redact: tuple[ShopifyId, ...] = Field(default=(), max_length=MAX_LINES)


class ShopRedact(_ShopRequest):
    """``shop/redact``: 48 hours after the app was uninstalled, erase the shop's data."""


CUSTOMER_KIND = "shopify-customer"


def customer_subject(customer_id: str) -> str:
    """The data subject of one of the shop's customers."""
    return f"{CUSTOMER_KIND}:{customer_id}"


PRIVACY_PAYLOADS: Mapping[str, type[_Payload]] = {
    "customers/data_request": CustomerDataRequest,
    "customers/redact": CustomerRedact,
    "shop/redact": ShopRedact,
}

PAYLOADS: Mapping[str, type[_Payload]] = {
    "orders/create": OrderCreated,
    "refunds/create": RefundCreated,
    "inventory_levels/update": InventoryLevelUpdated,
    "products/create": Product,
    "products/update": Product,
    "inventory_items/create": InventoryItem,
    "inventory_items/update": InventoryItem,
    "inventory_items/delete": InventoryItemDeleted,
    **PRIVACY_PAYLOADS,
}


def _event(event_type: str, data: BaseModel, correlation_id: str) -> NewEvent:
    return NewEvent(event_type, data, source=SOURCE, correlation_id=correlation_id)


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def order_created(order: OrderCreated, event_key: str) -> tuple[list[PlannedAppend], list[str]]:
    """Stock leaves per SKU. Returns the appends and the lines skipped (no SKU)."""
    sold: dict[str, int] = defaultdict(int)
    by_variant: dict[str, dict[str, int]] = defaultdict(dict)  # which listing of the SKU Shopify sold from
    skipped = []
    for index, line in enumerate(order.line_items):
        if line.sku:
            sold[line.sku] += line.quantity
            if line.variant_id is not None and line.quantity:
                variants = by_variant[line.sku]
                variants[line.variant_id] = variants.get(line.variant_id, 0) - line.quantity
        else:
            skipped.append(f"line_items[{index}]: no sku")
    appends = [
        PlannedAppend(f"sku:{sku}", (_event("dynafold.inventory.stock_adjusted.v2", StockAdjusted(
            sku=sku, delta=-quantity, reason="order", tx_id=f"shopify-order-{order.id}", order_id=str(order.id),
            applied_by_shopify=True, occurred_at=_time(order.created_at), by_variant=by_variant.get(sku, {})),
            event_key),))
        for sku, quantity in sorted(sold.items()) if quantity > 0
    ]
    return appends, skipped


def disposition_of(line: RefundLineItem) -> Disposition:
    if line.disposition is not None:
        return line.disposition
    return "UNSELLABLE" if line.restock_type == "no_restock" else "SELLABLE"


def shopify_restocked(line: RefundLineItem) -> bool:
    """Whether Shopify put the refunded quantity back into its own available count: restock types
    return, cancel and legacy_restock restock (REST Refund resource, restock_type:
    https://shopify.dev/docs/api/admin-rest/latest/resources/refund); no_restock (or none) does not."""
    return line.restock_type in ("return", "cancel", "legacy_restock")


def refund_created(refund: RefundCreated, event_key: str) -> tuple[list[PlannedAppend], list[str]]:
    """A return per refunded line, grouped into one append per SKU."""
    returns: dict[str, list[NewEvent]] = defaultdict(list)
    skipped = []
    for index, line in enumerate(refund.refund_line_items):
        sku = line.line_item.sku
        if not sku:
            skipped.append(f"refund_line_items[{index}]: no sku")
            continue
        disposition = disposition_of(line)
        returns[sku].append(_event("dynafold.inventory.return_recorded.v1", ReturnRecorded(
            sku=sku, quantity=line.quantity, disposition=disposition, order_id=str(refund.order_id),
            restocked=disposition == "SELLABLE", applied_by_shopify=shopify_restocked(line),
            occurred_at=_time(refund.created_at), variant_id=line.line_item.variant_id), event_key))
    appends = [PlannedAppend(f"sku:{sku}", tuple(events)) for sku, events in sorted(returns.items())]
    return appends, skipped


def level_reported(update: InventoryLevelUpdated, sku: str | None, counted: bool, event_key: str,
                   received_at: datetime, triggered_at: datetime | None = None) -> PlannedAppend:
    """The level on the item's SKU, or (no SKU known yet) kept in the item's own stream.

    ``received_at`` (the webhook's X-Shopify-Triggered-At, else our time of receipt) stands in when a
    body has no updated_at. ``triggered_at`` (X-Shopify-Triggered-At) refines updated_at when it
    falls in its second: Shopify's updated_at has whole seconds, so two changes in one second (our
    push, then a merchant's edit) would otherwise tie."""
    moment = update.updated_at or received_at
    if update.updated_at is not None and triggered_at is not None and _same_second(update.updated_at, triggered_at):
        moment = triggered_at
    updated_at = format_time(moment)  # one spelling (UTC), so times order as text
    if sku is None:
        unmapped = UnmappedLevelReceived(inventory_item_id=update.inventory_item_id, location_id=update.location_id,
                                         available=update.available, updated_at=updated_at, event_key=event_key)
        return PlannedAppend(item_stream(update.inventory_item_id),
                             (_event("dynafold.shopify.unmapped_level.v1", unmapped, event_key),))
    level = ShopifyLevelReported(sku=sku, inventory_item_id=update.inventory_item_id, location_id=update.location_id,
                                 available=update.available, updated_at=updated_at, counted=counted)
    return PlannedAppend(f"sku:{sku}", (_event("dynafold.inventory.shopify_level.v1", level, event_key),))


def _same_second(updated_at: datetime, triggered_at: datetime) -> bool:
    return updated_at.microsecond == 0 and format_time(updated_at)[:19] == format_time(triggered_at)[:19]


def learned_items(payload: _Payload) -> tuple[list[tuple[str, str | None, str | None]], list[str]]:
    """(inventory item id, SKU or None, variant id) a products/inventory_items webhook teaches,
    and what it could not use. A SKU of None means the item names no SKU (deleted, or blank or
    absent on the variant or item): it is unmapped (no change when it named none)."""
    if isinstance(payload, Product):
        found: list[tuple[str, str | None, str | None]] = []
        skipped: list[str] = []
        for index, variant in enumerate(payload.variants):
            if variant.inventory_item_id is None:
                skipped.append(f"variants[{index}]: no inventory_item_id")
            else:
                found.append((variant.inventory_item_id, variant.sku or None, variant.id))
        return found, skipped
    if isinstance(payload, InventoryItem):
        return [(payload.id, payload.sku or None, None)], []
    if isinstance(payload, InventoryItemDeleted):
        return [(payload.id, None, None)], []
    return [], []


def mapping_change(item_id: str, sku: str | None, variant_id: str | None, source: MapSource,
                   current: str | None, current_variant: str | None, correlation_id: str) -> list[PlannedAppend]:
    """The appends that make the item name ``sku`` (None: none): its own stream's ``item mapped``
    or ``item unmapped``, and on the SKUs' streams the listing it leaves and the one it joins.
    Empty when it already does (no noise per products/update), unless it names a variant not yet known."""
    variant = variant_id or current_variant
    if sku == current and (sku is None or variant == current_variant):
        return []
    if sku is None:
        item_event = _event("dynafold.shopify.item_unmapped.v1", ItemUnmapped(inventory_item_id=item_id, source=source),
                            correlation_id)
    else:
        item_event = _event("dynafold.shopify.item_mapped.v1",
                            ItemMapped(inventory_item_id=item_id, sku=sku, variant_id=variant, source=source),
                            correlation_id)
    plans = [PlannedAppend(item_stream(item_id), (item_event,))]
    if current is not None and current != sku:
        left = ShopifyItemUnlinked(sku=current, inventory_item_id=item_id, now_sku=sku, source=source)
        plans.append(PlannedAppend(f"sku:{current}", (_event("dynafold.inventory.shopify_item_unlinked.v1", left,
                                                             correlation_id),)))
    if sku is not None:
        joined = ShopifyItemLinked(sku=sku, inventory_item_id=item_id, variant_id=variant, source=source)
        plans.append(PlannedAppend(f"sku:{sku}", (_event("dynafold.inventory.shopify_item_linked.v1", joined,
                                                         correlation_id),)))
    return plans


def merged(plans: Sequence[PlannedAppend]) -> list[PlannedAppend]:
    """One plan per stream (their events in order): several items of one SKU in one webhook."""
    events: dict[str, list[NewEvent]] = {}
    for plan in plans:
        events.setdefault(plan.stream, []).extend(plan.events)
    return [PlannedAppend(stream, tuple(stream_events)) for stream, stream_events in events.items()]


def effect_key(topic: str, payload: _Payload, event_key: str) -> str:
    """The key guarding what a webhook causes: an order's stock changes are keyed by the order and a
    refund's returns by the refund, so the same order or refund delivered under other event ids
    (two subscriptions to one topic, a re-registered webhook, a replay) has its effect once. The
    other topics are keyed by the event (``event_key``, X-Shopify-Event-Id): a level is Shopify's
    state at a time and a mapping is idempotent by the item's current SKU."""
    if isinstance(payload, OrderCreated):
        return shopify_effect_key(topic, "order", payload.id)
    if isinstance(payload, RefundCreated):
        return shopify_effect_key(topic, "refund", payload.id)
    return shopify_delivery_key(topic, event_key)


def plan_parts(plans: Sequence[PlannedAppend], key: str, capacity: int) -> list[tuple[str, list[PlannedAppend]]]:
    """One webhook's appends as transactions, each with its own key.

    Deterministic (streams sorted, events kept in order, greedy packing) and independent of the
    delivery (an event's correlation id is not part of what its key guards), so a retried webhook,
    or the same order delivered under another event id, plans the same parts under the same keys
    and only the parts not yet written are appended: a crash between parts is completed, once, by
    whichever delivery comes next. One part keeps the webhook's key as it is.

    The packing is the one earlier releases used, when each stream's share of a transaction also
    cost its recorded head (one item per stream, ``capacity`` items in all): a transaction now holds
    only events, so a part could take more, but a webhook half-appended by an earlier release and
    retried after an upgrade must find its parts under the same keys, or it would append some lines
    twice. (A part of at most ``capacity`` items is still one valid transaction.)"""
    chunks: list[PlannedAppend] = []
    for plan in sorted(plans, key=lambda p: p.stream):
        events = list(plan.events)
        for start in range(0, len(events), capacity - 1):
            chunks.append(PlannedAppend(plan.stream, tuple(events[start:start + capacity - 1])))
    parts: list[list[PlannedAppend]] = []
    size = capacity
    for chunk in chunks:
        weight = len(chunk.events) + 1  # its events and, as earlier releases counted, the stream's head
        if size + weight > capacity:
            parts.append([])
            size = 0
        parts[-1].append(chunk)
        size += weight
    if len(parts) == 1:
        return [(key, parts[0])]
    return [(f"{key}#{index}/{len(parts)}", part) for index, part in enumerate(parts, start=1)]
