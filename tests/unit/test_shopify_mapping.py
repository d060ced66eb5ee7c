"""Shopify payloads -> planned appends (pure)."""

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from events.envelope import NewEvent, PlannedAppend
from events.shopify import (
    PAYLOADS,
    InventoryLevelUpdated,
    OrderCreated,
    RefundCreated,
    learned_items,
    level_reported,
    mapping_change,
    order_created,
    plan_parts,
    refund_created,
)
from tests.shopify_fixtures import named, payload


def test_an_order_sums_lines_per_sku_and_keys_each_append_by_webhook_and_sku():
    order = OrderCreated.model_validate({"id": 5, "line_items": [{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 2},
                                                                  {"sku": "B", "quantity": 3}, {"sku": "Z", "quantity": 0}],
                                         "customer": {"email": "ignored@example.com"}})
    appends, skipped = order_created(order, "wh-9")
    assert [(a.stream, a.idempotency_key, a.events[0].data.delta) for a in appends] == [
        ("sku:A", None, -2), ("sku:B", None, -4)]  # the webhook's one key guards them together
    assert skipped == []


def test_refund_dispositions_follow_the_explicit_field_then_the_restock_type():
    refund = RefundCreated.model_validate({"id": 1, "order_id": 2, "refund_line_items": [
        {"quantity": 1, "restock_type": "cancel", "line_item": {"sku": "A"}},
        {"quantity": 1, "restock_type": "no_restock", "line_item": {"sku": "A"}},
        {"quantity": 1, "restock_type": "return", "disposition": "DAMAGED", "line_item": {"sku": "A"}},
        {"quantity": 1, "line_item": {}}]})
    [append], skipped = refund_created(refund, "wh-1")
    assert [(e.data.disposition, e.data.restocked) for e in append.events] == [
        ("SELLABLE", True), ("UNSELLABLE", False), ("DAMAGED", False)]
    assert skipped == ["refund_line_items[3]: no sku"]


NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_a_real_level_update_names_no_sku_and_is_kept_on_the_item_until_mapped():
    update = InventoryLevelUpdated.model_validate(payload("inventory_levels/update"))
    kept = level_reported(update, None, True, "ev", NOW)
    assert kept.stream == "shopifyitem:808950810" and kept.events[0].data.available == 9
    counted = level_reported(update, "IPOD2008PINK", True, "ev", NOW).events[0].data
    assert (counted.sku, counted.location_id, counted.updated_at) == (
        "IPOD2008PINK", "487838322", "2023-01-03T17:21:36.000000Z")  # Shopify's -05:00 time, in UTC
    # X-Shopify-Triggered-At in updated_at's second refines it (two changes in one second stay
    # ordered); one from another second does not.
    triggered = datetime(2023, 1, 3, 17, 21, 36, 877041, tzinfo=timezone.utc)
    refined = level_reported(update, "IPOD2008PINK", True, "ev", NOW, triggered).events[0].data
    assert refined.updated_at == "2023-01-03T17:21:36.877041Z"
    later = level_reported(update, "IPOD2008PINK", True, "ev", NOW, NOW).events[0].data
    assert later.updated_at == "2023-01-03T17:21:36.000000Z"


@pytest.mark.parametrize("available, expected", [(-3, -3), (None, None), ("12", 12)])
def test_oversold_untracked_and_string_levels_are_taken_as_shopify_means_them(available, expected):
    update = InventoryLevelUpdated.model_validate({**payload("inventory_levels/update"), "available": available})
    assert update.available == expected


@pytest.mark.parametrize("bad", [{"available": "many"}, {"available": 1.5}, {"inventory_item_id": 0},
                                 {"location_id": "gid://shopify/Location/x"}])
def test_unusable_levels_are_refused(bad):
    with pytest.raises(ValidationError):
        InventoryLevelUpdated.model_validate({**payload("inventory_levels/update"), **bad})


def test_products_and_inventory_items_teach_the_item_map():
    rows, skipped = learned_items(PAYLOADS["products/create"].model_validate(payload("products/create")))
    assert rows[0] == ("808950810", "IPOD2008PINK", "808950810") and len(rows) == 4 and skipped == []
    rows, _ = learned_items(PAYLOADS["inventory_items/delete"].model_validate(payload("inventory_items/delete")))
    assert rows == [("808950810", None, None)]
    no_item = {**payload("products/update"), "variants": [{"id": 1, "sku": "A"}]}
    assert learned_items(PAYLOADS["products/update"].model_validate(no_item)) == ([], ["variants[0]: no inventory_item_id"])


def test_a_blank_or_absent_sku_unmaps_the_item():
    """Issue 18 §2: learned_items promised that an item naming no SKU is unmapped; a blank SKU on a
    variant (Shopify's own sample, shopify-api-php Product202301Test test_26) or on an inventory
    item was skipped instead, so the item kept its old SKU and went on being pushed."""
    rows, skipped = learned_items(PAYLOADS["products/update"].model_validate(named("products_update_blank_sku")))
    assert rows == [("1070325026", None, "1070325026"), ("1070325027", None, "1070325027")] and skipped == []
    for body in ({**payload("inventory_items/update"), "sku": ""}, {"id": 808950810}):
        assert learned_items(PAYLOADS["inventory_items/update"].model_validate(body)) == ([("808950810", None, None)], [])


def test_unmapping_is_an_event_on_the_item_and_on_the_sku_it_leaves():
    plans = mapping_change("808950810", None, None, "inventory_items", "IPOD2008PINK", "808950810", "ev")
    assert [(p.stream, [e.type for e in p.events]) for p in plans] == [
        ("shopifyitem:808950810", ["dynafold.shopify.item_unmapped.v1"]),
        ("sku:IPOD2008PINK", ["dynafold.inventory.shopify_item_unlinked.v1"])]
    assert mapping_change("808950810", None, None, "inventory_items", None, None, "ev") == []  # named none before
    moved = mapping_change("808950810", "NEW", None, "products", "OLD", "808950810", "ev")
    assert [(p.stream, p.events[0].data.model_dump(exclude={"source"})) for p in moved[1:]] == [
        ("sku:OLD", {"sku": "OLD", "inventory_item_id": "808950810", "now_sku": "NEW"}),
        ("sku:NEW", {"sku": "NEW", "inventory_item_id": "808950810", "variant_id": "808950810"})]
    # the same SKU again: no noise; a variant learned later (inventory_items/* carry none) is told once
    assert mapping_change("808950810", "NEW", None, "inventory_items", "NEW", None, "ev") == []
    assert len(mapping_change("808950810", "NEW", "5", "products", "NEW", None, "ev")) == 2


def test_two_variants_sharing_a_sku_are_two_listings_of_it():
    """Issue 18 §2, on Shopify's own products/create sample (two variants with SKU "123"): each
    item is mapped, and the SKU's stream learns both, in one plan per stream."""
    from events.memory import InMemoryEventLog
    from processors.services.shopify_items import changes

    rows, _ = learned_items(PAYLOADS["products/create"].model_validate(named("products_create_shared_sku")))
    plans = changes(InMemoryEventLog(), rows, "products", "ev")
    assert [(p.stream, [e.data.inventory_item_id for e in p.events]) for p in plans] == [
        ("shopifyitem:1070325021", ["1070325021"]), ("sku:123", ["1070325021", "1070325022"]),
        ("shopifyitem:1070325022", ["1070325022"])]
    assert [e.data.variant_id for e in plans[1].events] == ["1070325021", "1070325022"]


def _plan(stream: str, count: int) -> PlannedAppend:
    return PlannedAppend(stream, tuple(NewEvent("t", {"n": n}) for n in range(count)))


def test_a_webhook_fits_one_part_under_its_own_key_else_deterministic_parts():
    assert plan_parts([_plan("sku:B", 2), _plan("sku:A", 1)], "k", 99) == [
        ("k", [_plan("sku:A", 1), _plan("sku:B", 2)])]
    parts = plan_parts([_plan(f"sku:{n:03}", 1) for n in range(150)], "k", 99)
    # packed as earlier releases packed them (a head item per stream), so a webhook half-appended
    # before an upgrade finds the same part keys after it: 49 one-event streams per 99 items
    assert [(key, len(part)) for key, part in parts] == [("k#1/4", 49), ("k#2/4", 49), ("k#3/4", 49), ("k#4/4", 3)]
    assert plan_parts(list(reversed([_plan(f"sku:{n:03}", 1) for n in range(150)])), "k", 99) == parts
    split = plan_parts([_plan("sku:A", 120)], "k", 99)
    assert [len(part[0].events) for _, part in split] == [98, 22]


def test_every_fixture_names_its_source():
    from tests.shopify_fixtures import FIXTURES
    readme = (FIXTURES / "README.md").read_text()
    assert all(f"`{path.name}`" in readme for path in FIXTURES.glob("*.json"))


def test_real_order_and_refund_bodies_parse():
    from tests.shopify_fixtures import payload
    appends, _ = order_created(OrderCreated.model_validate(payload("orders/create")), "wh")
    assert [a.stream for a in appends] == ["sku:IPOD2008BLACK", "sku:IPOD2008GREEN", "sku:IPOD2008RED"]
    [black, green], _ = refund_created(RefundCreated.model_validate(payload("refunds/create")), "wh")
    assert black.events[0].data.restocked and green.stream == "sku:IPOD2008GREEN"


def test_orders_and_refunds_name_the_variant_shopify_changed():
    """Issue 18 §2: with several items sharing a SKU, only the variant's item moved in Shopify."""
    appends, _ = order_created(OrderCreated.model_validate(payload("orders/create")), "wh")
    assert [a.events[0].data.by_variant for a in appends] == [{"457924702": -1}, {"39072856": -1}, {"49148385": -1}]
    two = {**payload("orders/create"), "line_items": [{"sku": "123", "quantity": 2, "variant_id": 1070325021},
                                                      {"sku": "123", "quantity": 1, "variant_id": 1070325022},
                                                      {"sku": "123", "quantity": 1, "variant_id": None}]}
    [append], _ = order_created(OrderCreated.model_validate(two), "wh")
    assert (append.events[0].data.delta, append.events[0].data.by_variant) == (-4, {"1070325021": -2,
                                                                                    "1070325022": -1})
    [black, _], _ = refund_created(RefundCreated.model_validate(payload("refunds/create")), "wh")
    assert black.events[0].data.variant_id == "457924702"


def test_bulk_imports_are_checked_whole_before_anything_is_mapped():
    from events.errors import DynafoldError
    from processors.services.shopify_items import parse_import

    assert parse_import("inventory_item_id,sku,variant_id\n808950810,PINK,\n2,RED,49148385\n", "csv") == [
        ("808950810", "PINK", None), ("2", "RED", "49148385")]
    assert parse_import('[{"inventory_item_id": "gid://shopify/InventoryItem/7", "sku": "X"}]', "json") == [
        ("7", "X", None)]
    for text, fmt, fragment in [("id,sku\n1,A\n", "csv", "lacks inventory_item_id"),
                                ("inventory_item_id,sku\n1,A\nx,B\n", "csv", "line 3"),
                                ("inventory_item_id,sku\n1,A\n1,B\n", "csv", "two SKUs"),
                                ("{}", "json", "JSON array"), ("[", "json", "not valid JSON")]:
        with pytest.raises(DynafoldError, match=fragment):
            parse_import(text, fmt)


def test_an_operator_map_change_lands_on_the_item_and_its_skus_at_once_and_only_from_the_version_read():
    from events.errors import VersionConflict
    from events.memory import InMemoryEventLog
    from events.shopify import mapping_change
    from processors.services.shopify_items import set_items

    store = InMemoryEventLog()
    [first] = set_items(store, [("808950810", "OLD", None)], "admin", "ops")
    [moved] = set_items(store, [("808950810", "NEW", None)], "admin", "ops")
    assert first["changed"] and moved["changed"] and moved["version"] == 2
    assert [e.type.split(".")[-2] for e in store.read_stream("sku:OLD")] == ["shopify_item_linked",
                                                                             "shopify_item_unlinked"]
    # Another operator who read the same version and changed the map first: this one is refused.
    store.append_streams(mapping_change("5", "A", None, "admin", None, None, "other"), "shopify-map:5@0")
    with pytest.raises(VersionConflict):
        set_items(StaleRead(store), [("5", "B", None)], "admin", "ops")


class StaleRead:
    """The store as an operator saw it before the other's change: item 5's stream still empty."""

    def __init__(self, store) -> None:
        self._store = store

    def read_stream(self, stream: str, *args):
        return [] if stream == "shopifyitem:5" else self._store.read_stream(stream, *args)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def test_every_part_of_a_big_decision_is_checked_before_the_first_is_appended():
    """Issue 18 §3: a bad stream or event in the last part refuses the decision; nothing is written."""
    from events.errors import DynafoldError
    from processors.api.appends import check_parts

    order = OrderCreated.model_validate({"id": 9, "line_items": [{"sku": f"S{n:03}", "quantity": 1}
                                                                  for n in range(150)]})
    appends, _ = order_created(order, "ev")
    good = plan_parts(appends, "k", 99)
    check_parts(good, NOW)  # fits: four parts
    for bad in (PlannedAppend("sku:Z\x01", appends[0].events),  # a stream id the catalogue refuses
                PlannedAppend("sku:ZZZ", (NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": ""}),))):
        parts = plan_parts([*appends, bad], "k", 99)
        assert bad.stream in [plan.stream for plan in parts[-1][1]]  # sorted last: in the last part
        with pytest.raises(DynafoldError):
            check_parts(parts, NOW)


def test_an_order_or_refund_is_keyed_by_itself_and_no_event_id_spells_its_key():
    from events.idempotency_keys import shopify_delivery_key
    from events.shopify import effect_key

    order = OrderCreated.model_validate(payload("orders/create"))
    refund = RefundCreated.model_validate(payload("refunds/create"))
    level = InventoryLevelUpdated.model_validate(payload("inventory_levels/update"))
    assert {effect_key("orders/create", order, event) for event in ("ev-1", "ev-2")} == {
        "shopify:orders/create#order:450789469"}
    assert effect_key("refunds/create", refund, "ev-1") == "shopify:refunds/create#refund:509562969"
    assert effect_key("inventory_levels/update", level, "ev-1") == shopify_delivery_key("inventory_levels/update", "ev-1")
    for spelt in ("#order:450789469", "order:450789469", ":#order:450789469"):
        assert shopify_delivery_key("orders/create", spelt) != effect_key("orders/create", order, "ev")
