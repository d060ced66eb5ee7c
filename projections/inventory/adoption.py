"""Onboarding (issue 18 §1): what adopting Shopify's level as a SKU's first physical count would record. Pure.

A SKU never counted here is never pushed (our 0 is no count). ``dynafold shopify adopt`` (and
``POST /shopify/adopt``) records, for such a SKU, Shopify's current level as its first count
instead: the total over the counted locations of one of its items, as Shopify last reported it.

A SKU's items are listings of one stock pool, so they should agree. When they do not (two
variants sharing a SKU, stocked differently in Shopify), which one is the shop's truth is the
merchant's call: the SKU is refused, naming each item and what it shows, unless ``from_items``
names the one to take. The other items are then pushed that count like any listing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from events.inventory import AdoptedLevel, ShopifyCountAdopted
from projections.inventory.fold import InventoryItem, ListedItem


@dataclass(frozen=True)
class Adoption:
    """What adopting ``sku`` would record (``event``), or why it cannot (``refused``); ``then`` is
    what each item shows now -> what it will show once pushed (our available count)."""

    sku: str
    event: ShopifyCountAdopted | None = None
    refused: str | None = None
    then: tuple[tuple[str, int | None, int], ...] = ()

    def row(self) -> dict[str, object]:
        """The answer's row: the CLI's table and the route's JSON."""
        event = self.event
        return {
            "sku": self.sku,
            "physical": event.physical if event else None,
            "from_item": event.from_item if event else None,
            "levels": [f"{level.inventory_item_id}@{level.location_id}={level.available} ({level.updated_at})"
                       for level in event.levels] if event else [],
            "then": [f"{item}: {shows} -> {will}" for item, shows, will in self.then if shows != will],
            "refused": self.refused,
        }


def _levels(item: ListedItem) -> tuple[AdoptedLevel, ...]:
    return tuple(AdoptedLevel(inventory_item_id=item.inventory_item_id, location_id=level.location_id,
                              available=level.available, updated_at=level.updated_at)
                 for level in item.levels if level.counted and level.available is not None)


def plan_adoption(state: InventoryItem, adopted_by: str, from_items: Collection[str] = ()) -> Adoption:
    """The adoption of ``state``'s SKU, or the refusal saying why (and what would decide it)."""
    sku = state.sku
    if state.counted:
        return Adoption(sku, refused=f"already counted here (physical {state.physical}): adoption only sets a "
                                     "first count")
    shown = [item for item in state.shopify_items if item.available is not None]
    if not shown:
        return Adoption(sku, refused=("Shopify lists no item of it" if not state.shopify_items else
                                      "Shopify reported no level of its items at a counted location"))
    named = [item for item in shown if item.inventory_item_id in from_items]
    if len(named) > 1:
        return Adoption(sku, refused="--from-item names more than one of its items: "
                                     + ", ".join(item.inventory_item_id for item in named))
    values = {item.available for item in shown}
    if not named and len(values) > 1:
        return Adoption(sku, refused="its items disagree (listings of one stock pool): "
                                     + ", ".join(f"{item.inventory_item_id} shows {item.available}" for item in shown)
                                     + "; say which to take with --from-item ITEM")
    taken = named[0] if named else shown[0]
    physical = taken.available or 0
    if physical < 0:
        return Adoption(sku, refused=f"Shopify shows {physical} (oversold) for item {taken.inventory_item_id}: "
                                     "count it instead")
    others = tuple(level for item in state.shopify_items if item is not taken for level in _levels(item))
    event = ShopifyCountAdopted(sku=sku, physical=physical, from_item=taken.inventory_item_id,
                                levels=_levels(taken), other_items=others, adopted_by=adopted_by)
    available = max(0, physical - state.buffer)
    then = tuple((item.inventory_item_id, item.available, available) for item in state.shopify_items)
    return Adoption(sku, event=event, then=then)
