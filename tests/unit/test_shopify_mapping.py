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
    order_created,
    plan_parts,
    refund_created,
)
from tests.shopify_fixtures import payload


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
    no_sku = {**payload("products/update"), "variants": [{"id": 1, "inventory_item_id": 2, "sku": ""}]}
    assert learned_items(PAYLOADS["products/update"].model_validate(no_sku)) == ([], ["variants[0]: no sku"])


def _plan(stream: str, count: int) -> PlannedAppend:
    return PlannedAppend(stream, tuple(NewEvent("t", {"n": n}) for n in range(count)))


def test_a_webhook_fits_one_part_under_its_own_key_else_deterministic_parts():
    assert plan_parts([_plan("sku:B", 2), _plan("sku:A", 1)], "k", 100) == [
        ("k", [_plan("sku:A", 1), _plan("sku:B", 2)])]
    parts = plan_parts([_plan(f"sku:{n:03}", 1) for n in range(250)], "k", 100)
    # a transaction holds only events (no head per stream): 100 one-event streams per part
    assert [(key, len(part)) for key, part in parts] == [("k#1/3", 100), ("k#2/3", 100), ("k#3/3", 50)]
    assert plan_parts(list(reversed([_plan(f"sku:{n:03}", 1) for n in range(250)])), "k", 100) == parts
    split = plan_parts([_plan("sku:A", 120)], "k", 100)
    assert [len(part[0].events) for _, part in split] == [100, 20]
    mixed = plan_parts([_plan("sku:A", 60), _plan("sku:B", 50)], "k", 100)
    assert [[len(p.events) for p in part] for _, part in mixed] == [[60], [50]]


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
