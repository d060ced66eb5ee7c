"""Shopify payloads -> planned appends (pure)."""

from events.shopify import InventoryLevelUpdated, OrderCreated, RefundCreated, order_created, refund_created, storefront_count


def test_an_order_sums_lines_per_sku_and_keys_each_append_by_webhook_and_sku():
    order = OrderCreated.model_validate({"id": 5, "line_items": [{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 2},
                                                                  {"sku": "B", "quantity": 3}, {"sku": "Z", "quantity": 0}],
                                         "customer": {"email": "ignored@example.com"}})
    appends, skipped = order_created(order, "wh-9")
    assert [(a.stream, a.idempotency_key, a.events[0].data.delta) for a in appends] == [
        ("sku:A", "shopify:wh-9:A", -2), ("sku:B", "shopify:wh-9:B", -4)]
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


def test_the_storefront_count_adds_the_buffer_back():
    plan = storefront_count(InventoryLevelUpdated(sku="A", available=7), buffer=3, webhook_id="wh-2")
    assert (plan.events[0].data.physical, plan.events[0].data.source) == (10, "shopify")


def test_every_fixture_names_its_source():
    from tests.shopify_fixtures import FIXTURES
    readme = (FIXTURES / "README.md").read_text()
    assert all(f"`{path.name}`" in readme for path in FIXTURES.glob("*.json"))


def test_real_order_and_refund_bodies_parse():
    from tests.shopify_fixtures import payload
    appends, skipped = order_created(OrderCreated.model_validate(payload("orders/create")), "wh")
    assert [a.stream for a in appends] == ["sku:IPOD2008BLACK", "sku:IPOD2008GREEN", "sku:IPOD2008RED"]
    [black, green], _ = refund_created(RefundCreated.model_validate(payload("refunds/create")), "wh")
    assert black.events[0].data.restocked and green.stream == "sku:IPOD2008GREEN"
