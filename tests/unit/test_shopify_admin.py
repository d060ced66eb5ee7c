"""Issue 11 §5: the Admin API adapter against the local Shopify stand-in (loopback HTTP, no AWS),
the pure reading of Shopify's answers, and the push effect's compare-and-set re-decision."""

from __future__ import annotations

from datetime import datetime, timezone

from dataclasses import dataclass, field
from typing import Any

import pytest

from events.envelope import RecordedEvent
from events.inventory import ShopifyPushPlanned
from events.shopify_admin import (
    Applied,
    CompareStale,
    Level,
    Refused,
    Throttled,
    read_level_answer,
    read_set_answer,
)
from processors.adapters.shopify_admin import ShopifyAdminClient, ShopifyAdminSettings, ShopifyUnavailable
from processors.local.shopify_admin import ShopifyStandIn
from processors.services.shopify_push import ShopifyPusher, settled_key
from tests.unit.test_folds import T0, recorded

ITEM, HERE = "808950810", "487838322"


@pytest.fixture
def shop():
    with ShopifyStandIn(token="shpat_test", app_secret="shpss") as stand_in:
        stand_in.stock(ITEM, HERE, 4)
        yield stand_in


def client(shop: ShopifyStandIn, token: str = "shpat_test", **settings: Any) -> tuple[ShopifyAdminClient, list[float]]:
    waits: list[float] = []
    return ShopifyAdminClient(ShopifyAdminSettings(shop.url, **settings), token, sleep=waits.append), waits


def test_set_is_compare_and_set_and_the_level_can_be_read(shop):
    admin, _ = client(shop)
    assert admin.set_available("push-1", ITEM, HERE, 10, compare_quantity=4) == Applied()
    assert shop.levels[(ITEM, HERE)] == 10
    stale = admin.set_available("push-2", ITEM, HERE, 12, compare_quantity=4)
    assert isinstance(stale, CompareStale) and shop.levels[(ITEM, HERE)] == 10  # nothing written
    assert admin.available_at(ITEM, HERE) == Level(10)
    assert admin.available_at(ITEM, "1") == Level(None)  # not stocked there
    assert isinstance(admin.available_at("1", HERE), Refused)
    sent = shop.calls[0]["variables"]["input"]
    assert sent == {"name": "available", "reason": "correction",
                    "referenceDocumentUri": "urn:dynafold:shopify-push:push-1",
                    "quantities": [{"inventoryItemId": f"gid://shopify/InventoryItem/{ITEM}",
                                    "locationId": f"gid://shopify/Location/{HERE}",
                                    "quantity": 10, "compareQuantity": 4}]}


def test_each_change_sends_a_signed_real_shaped_level_webhook(shop):
    admin, _ = client(shop)
    admin.set_available("push-1", ITEM, HERE, 10, compare_quantity=4)
    shop.merchant_sets(ITEM, HERE, 25)
    bodies = [webhook.json() for webhook in shop.pending]
    assert [(b["inventory_item_id"], b["location_id"], b["available"]) for b in bodies] == [
        (int(ITEM), int(HERE), 10), (int(ITEM), int(HERE), 25)]
    assert set(bodies[0]) == {"inventory_item_id", "location_id", "available", "updated_at", "admin_graphql_api_id"}
    headers = shop.pending[0].headers
    assert headers["X-Shopify-Topic"] == "inventory_levels/update" and headers["X-Shopify-Hmac-Sha256"]


def test_throttling_and_429_are_waited_out_within_bounds(shop):
    admin, waits = client(shop)
    shop.throttle(1)
    assert admin.available_at(ITEM, HERE) == Level(4)
    assert waits == [0.25]  # 10 points requested, 5 available, 100/s restore -> 0.1 s; at least the first step
    shop.rate_limit(1, retry_after="2")
    assert admin.available_at(ITEM, HERE) == Level(4)
    assert waits[1:] == [2.0]
    shop.throttle(10)
    with pytest.raises(ShopifyUnavailable):
        client(shop, max_tries=3)[0].available_at(ITEM, HERE)


def test_a_wrong_token_is_refused_not_retried(shop):
    admin, waits = client(shop, token="wrong")
    assert read_set_answer(401, {"errors": "x"}) == Refused("HTTP 401")
    assert admin.set_available("p", ITEM, HERE, 1, 4) == Refused("HTTP 401") and waits == []


def test_answers_are_read_as_shopify_documents_them():
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {"requestedQueryCost": 752, "actualQueryCost": None, "throttleStatus": {
                     "maximumAvailable": 1000.0, "currentlyAvailable": 666, "restoreRate": 50.0}}}}
    assert read_set_answer(200, throttled) == Throttled(1.8)
    assert read_set_answer(429, None, "3") == Throttled(3.0)
    # Retry-After read as RFC 9110 says, by the project's one parser: no float() of anything
    assert read_set_answer(429, None, "1e400") == Throttled(1.0)
    assert read_set_answer(429, None, "nan") == Throttled(1.0)
    now = datetime(2026, 10, 21, 7, 27, 30, tzinfo=timezone.utc)
    assert read_set_answer(429, None, "Wed, 21 Oct 2026 07:28:00 GMT", now) == Throttled(30.0)
    assert read_level_answer(200, {"data": {"inventoryItem": {"inventoryLevel": {"quantities": [
        {"name": "available", "quantity": -2}]}}}}) == Level(-2)
    assert isinstance(read_set_answer(200, {"data": {"inventorySetQuantities": {"userErrors": [
        {"code": "ITEM_NOT_STOCKED_AT_LOCATION", "field": ["input"], "message": "no"}]}}}), Refused)


@dataclass
class FakeStore:
    appended: list[tuple[str, list[Any], str | None]] = field(default_factory=list)

    def recorded_streams(self, key: str) -> Any:
        return [] if any(k == key for _, _, k in self.appended) else None

    def append(self, stream: str, events: list[Any], expected: Any, idempotency_key: str | None = None) -> None:
        self.appended.append((stream, events, idempotency_key))


def planned(quantity: int, compare: int) -> RecordedEvent:
    return recorded("sku:P", 5, ShopifyPushPlanned(sku="P", push_id="push-1", inventory_item_id=ITEM,
                                                   location_id=HERE, quantity=quantity, compare_quantity=compare,
                                                   total=quantity), T0)


def test_the_push_effect_sets_once_and_re_decides_on_a_mismatch(shop):
    store = FakeStore()
    admin, _ = client(shop)
    pusher = ShopifyPusher(store, lambda: admin)  # type: ignore[arg-type]
    shop.sell(ITEM, HERE, 1)  # Shopify sold one after we looked (4 -> 3): read, set over it
    settled = pusher(planned(10, 4))
    assert settled is not None and (settled.outcome, settled.quantity, settled.attempts) == ("applied", 10, 2)
    assert shop.levels[(ITEM, HERE)] == 10
    assert store.appended[0][2] == settled_key("push-1")
    assert pusher(planned(10, 4)) is None  # redelivered: settled before, nothing sent
    assert len([c for c in shop.calls if "inventorySetQuantities(" in c["query"]]) == 2


def test_a_push_found_applied_or_refused_is_settled_so(shop):
    admin, _ = client(shop)
    shop.stock(ITEM, HERE, 10)
    assert ShopifyPusher(FakeStore(), lambda: admin)(planned(10, 4)).outcome == "already_applied"  # type: ignore
    failed = ShopifyPusher(FakeStore(), lambda: client(shop, token="bad")[0])(planned(10, 4))  # type: ignore
    assert failed.outcome == "failed" and failed.detail == "HTTP 401"


def test_configuration_is_checked_at_start():
    from projections.reactor.settings import ShopifySyncSettings

    assert ShopifyAdminSettings.from_env({}) is None
    settings = ShopifyAdminSettings.from_env({"DYNAFOLD_SHOPIFY_SHOP": "demo.myshopify.com"})
    assert settings is not None
    assert settings.endpoint == "https://demo.myshopify.com/admin/api/2025-10/graphql.json"
    for bad in ({"DYNAFOLD_SHOPIFY_SHOP": "demo.example.com"},
                {"DYNAFOLD_SHOPIFY_ADMIN_URL": "http://shop.example.com"},  # plain http off loopback
                {"DYNAFOLD_SHOPIFY_SHOP": "demo.myshopify.com", "DYNAFOLD_SHOPIFY_API_VERSION": "2026-04"}):
        with pytest.raises(ValueError):
            ShopifyAdminSettings.from_env(bad)
    assert ShopifySyncSettings.from_env({}) is None
    assert ShopifySyncSettings.from_env({"DYNAFOLD_SHOPIFY_PUSH_LOCATION": HERE}).push_location == HERE
    with pytest.raises(ValueError, match="not one of"):
        ShopifySyncSettings.from_env({"DYNAFOLD_SHOPIFY_PUSH_LOCATION": HERE, "DYNAFOLD_SHOPIFY_LOCATIONS": "1,2"})
    with pytest.raises(ValueError):
        ShopifySyncSettings.from_env({"DYNAFOLD_SHOPIFY_PUSH_LOCATION": "gid://shopify/Location/1"})
