"""Shopify webhooks (seed 004) turned into inventory events. Pure: payloads in, planned appends out.

The payload models keep only the fields dynafold uses and ignore the rest: a Shopify webhook is
Shopify's document (hundreds of fields, growing), not one of our events.

- ``orders/create``: one ``stock adjusted`` per SKU (lines of one SKU summed), tx id = the order.
- ``refunds/create``: one ``return recorded`` per refunded line, with a disposition (an explicit
  ``disposition`` on the line wins; else Shopify's ``restock_type``: return/cancel/legacy_restock
  mean the goods went back on the shelf, no_restock means they did not). Sellable returns restock.
- ``inventory_levels/update``: the storefront's available count, set by someone outside dynafold;
  dynafold keeps ``available = physical - buffer``, so the physical count becomes available + buffer.
  An update carrying the tx id of one of our own broadcasts is its echo and is ignored (the caller
  checks that, it needs the log).

Each SKU is its own stream, so one webhook may plan several appends; each is guarded by the
webhook id and the SKU, so a retried webhook appends nothing twice and a half-done one completes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import NewEvent, PlannedAppend
from events.inventory import Disposition, PhysicalCountSet, ReturnRecorded, StockAdjusted

SOURCE = "urn:dynafold:shopify"
TOPICS = ("orders/create", "refunds/create", "inventory_levels/update")
Sku = str


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LineItem(_Payload):
    sku: str | None = Field(default=None, max_length=512)
    quantity: int = Field(ge=0, le=1_000_000)


class OrderCreated(_Payload):
    id: int | str
    name: str | None = None
    line_items: tuple[LineItem, ...] = Field(default=(), max_length=1000)


class RefundedProduct(_Payload):
    sku: str | None = Field(default=None, max_length=512)


class RefundLineItem(_Payload):
    quantity: int = Field(gt=0, le=1_000_000)
    restock_type: Literal["return", "cancel", "no_restock", "legacy_restock"] | None = None
    disposition: Disposition | None = None
    line_item: RefundedProduct


class RefundCreated(_Payload):
    id: int | str
    order_id: int | str
    refund_line_items: tuple[RefundLineItem, ...] = Field(default=(), max_length=1000)


class InventoryLevelUpdated(_Payload):
    sku: str = Field(min_length=1, max_length=512, description="the storefront integration includes it")
    available: int = Field(ge=0, le=100_000_000)
    inventory_item_id: int | str | None = None
    location_id: int | str | None = None
    tx_id: str | None = Field(default=None, max_length=200, description="set when echoing our own broadcast")


PAYLOADS: dict[str, type[_Payload]] = {
    "orders/create": OrderCreated,
    "refunds/create": RefundCreated,
    "inventory_levels/update": InventoryLevelUpdated,
}


def _event(event_type: str, data: BaseModel, correlation_id: str) -> NewEvent:
    return NewEvent(event_type, data, source=SOURCE, correlation_id=correlation_id)


def order_created(order: OrderCreated, webhook_id: str) -> tuple[list[PlannedAppend], list[str]]:
    """Stock leaves per SKU. Returns the appends and the lines skipped (no SKU), for the answer."""
    sold: dict[Sku, int] = defaultdict(int)
    skipped = []
    for index, line in enumerate(order.line_items):
        if line.sku:
            sold[line.sku] += line.quantity
        else:
            skipped.append(f"line_items[{index}]: no sku")
    appends = [
        PlannedAppend(f"sku:{sku}", (_event("dynafold.inventory.stock_adjusted.v2", StockAdjusted(
            sku=sku, delta=-quantity, reason="order", tx_id=f"shopify-order-{order.id}", order_id=str(order.id)),
            webhook_id),), f"shopify:{webhook_id}:{sku}")
        for sku, quantity in sorted(sold.items()) if quantity > 0
    ]
    return appends, skipped


def disposition_of(line: RefundLineItem) -> Disposition:
    if line.disposition is not None:
        return line.disposition
    return "UNSELLABLE" if line.restock_type == "no_restock" else "SELLABLE"


def refund_created(refund: RefundCreated, webhook_id: str) -> tuple[list[PlannedAppend], list[str]]:
    """A return per refunded line, grouped into one append per SKU."""
    returns: dict[Sku, list[NewEvent]] = defaultdict(list)
    skipped = []
    for index, line in enumerate(refund.refund_line_items):
        sku = line.line_item.sku
        if not sku:
            skipped.append(f"refund_line_items[{index}]: no sku")
            continue
        disposition = disposition_of(line)
        returns[sku].append(_event("dynafold.inventory.return_recorded.v1", ReturnRecorded(
            sku=sku, quantity=line.quantity, disposition=disposition, order_id=str(refund.order_id),
            restocked=disposition == "SELLABLE"), webhook_id))
    appends = [PlannedAppend(f"sku:{sku}", tuple(events), f"shopify:{webhook_id}:{sku}")
               for sku, events in sorted(returns.items())]
    return appends, skipped


def storefront_count(update: InventoryLevelUpdated, buffer: int, webhook_id: str) -> PlannedAppend:
    """The physical count implied by the storefront's available count and the SKU's buffer."""
    count = PhysicalCountSet(sku=update.sku, physical=update.available + buffer, source="shopify")
    return PlannedAppend(f"sku:{update.sku}", (_event("dynafold.inventory.physical_count_set.v1", count, webhook_id),),
                         f"shopify:{webhook_id}:{update.sku}")
