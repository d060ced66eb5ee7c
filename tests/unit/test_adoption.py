"""Issue 18 §1: what adopting Shopify's level as a SKU's first count records, or why it cannot (pure)."""

from __future__ import annotations

from projections.inventory import InventoryItem, ListedItem
from projections.inventory.adoption import plan_adoption
from projections.inventory.fold import LocationLevel

FIRST, SECOND, HERE, THERE = "1070325021", "1070325022", "487838322", "905684977"
AT = "2024-01-02T14:00:00.000000Z"


def listed(item: str, *levels: tuple[str, int | None, bool]) -> ListedItem:
    return ListedItem(item, levels=tuple(LocationLevel(location, available, AT, counted)
                                         for location, available, counted in levels))


def sku(*items: ListedItem, counted: bool = False, buffer: int = 0) -> InventoryItem:
    return InventoryItem(sku="123", counted=counted, buffer=buffer, updated_at=AT, shopify_items=items)


def test_items_that_agree_adopt_their_total_over_the_counted_locations_with_its_evidence():
    state = sku(listed(FIRST, (HERE, 6, True), (THERE, 3, True), ("1", 40, False)), listed(SECOND, (HERE, 9, True)))
    adoption = plan_adoption(state, "cli:ops")
    event = adoption.event
    assert adoption.refused is None and event is not None
    assert (event.physical, event.from_item, event.adopted_by) == (9, FIRST, "cli:ops")
    assert [(lv.location_id, lv.available) for lv in event.levels] == [(HERE, 6), (THERE, 3)]  # not the uncounted one
    assert [(lv.inventory_item_id, lv.available) for lv in event.other_items] == [(SECOND, 9)]
    assert adoption.row()["then"] == []  # both already show it: nothing will be pushed


def test_items_that_disagree_are_refused_naming_them_unless_told_which_to_take():
    state = sku(listed(FIRST, (HERE, 9, True)), listed(SECOND, (HERE, 7, True)), buffer=2)
    refused = plan_adoption(state, "cli:ops")
    assert refused.event is None and refused.refused == (
        f"its items disagree (listings of one stock pool): {FIRST} shows 9, {SECOND} shows 7; "
        "say which to take with --from-item ITEM")
    taken = plan_adoption(state, "cli:ops", from_items={SECOND})
    assert taken.event is not None and (taken.event.physical, taken.event.from_item) == (7, SECOND)
    assert taken.row()["then"] == [f"{FIRST}: 9 -> 5", f"{SECOND}: 7 -> 5"]  # the pool's available: 7 - buffer 2
    assert "more than one" in (plan_adoption(state, "x", from_items={FIRST, SECOND}).refused or "")


def test_what_cannot_be_adopted_says_why():
    assert "already counted here (physical 4)" in (plan_adoption(
        InventoryItem(sku="123", physical=4, counted=True, shopify_items=(listed(FIRST, (HERE, 9, True)),)), "x"
    ).refused or "")
    assert plan_adoption(sku(), "x").refused == "Shopify lists no item of it"
    assert plan_adoption(sku(listed(FIRST, (HERE, None, True))), "x").refused == (
        "Shopify reported no level of its items at a counted location")
    assert "oversold" in (plan_adoption(sku(listed(FIRST, (HERE, -2, True))), "x").refused or "")
