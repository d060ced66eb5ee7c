"""Issue 18 §1-2 end to end: onboarding a catalogue with pushes on never zeroes a listing.

On Shopify's own products/create sample (two variants sharing SKU "123"), through the HTTP API,
the local stack and the local Shopify: the items are mapped and report their levels, the SKU was
never counted here, so nothing is pushed and one uncounted_sku alert says so. The items disagree
(9 and 7), so adopting refuses until told which to take; then the count is recorded, the other
item is pushed the pool's count, and the alert is marked read.
"""

from __future__ import annotations

import json

import pytest

from processors.adapters.secrets import Secrets
from processors.adapters.shopify_admin import ShopifyAdminSettings
from processors.api.deps import ApiSettings
from processors.cli.main import main
from processors.local.api_client import ApiClient
from processors.local.services import LocalApi
from processors.local.shopify_admin import ShopifyStandIn
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from projections.reactor.settings import ShopifySyncSettings
from tests.shopify_fixtures import named

FIRST, SECOND, HERE = "1070325021", "1070325022", "487838322"
SECRETS = Secrets.of(shopify="shpss_local_app_secret", admin_api_key="key", shopify_admin_token="shpat_local")


@pytest.fixture
def cli(local_dynamo, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_shared_sku_never_counted_is_not_pushed_until_adopted(local_dynamo, tmp_path, cli):
    with ShopifyStandIn(token="shpat_local", app_secret="shpss_local_app_secret") as shop:
        shop.stock(FIRST, HERE, 9)
        shop.stock(SECOND, HERE, 7)
        stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                           access_key=local_dynamo.access_key, secrets=SECRETS,
                           shopify_sync=ShopifySyncSettings(push_location=HERE),
                           shopify_admin=ShopifyAdminSettings(shop.url))
        with LocalApi(stack, SECRETS, ApiSettings()).serve() as server:
            shop.webhook_url = f"{server.url}/webhooks/shopify"
            api = ApiClient(server.url, SECRETS)

            def settle() -> None:
                for _ in range(5):
                    stack.drain()
                    if not shop.pending:
                        return
                    shop.deliver()
                raise AssertionError("dynafold and Shopify keep talking")

            assert api.shopify("products/create", named("products_create_shared_sku"), "wh-p", event_id="ev-p")[0] == 200
            shop.merchant_sets(FIRST, HERE, 9)  # Shopify reports each item's level
            shop.merchant_sets(SECOND, HERE, 7)
            settle()
            assert not [c for c in shop.calls if "inventorySetQuantities(" in c["query"]]  # never zeroed
            row = api.admin("GET", "/inventory/123")[1]
            assert row["uncounted"] and [i["shopify_available"] for i in row["shopify_items"]] == [9, 7]
            [alert] = [a for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_type"] == "uncounted_sku"]

            # The items disagree: the dry run says so and what would decide it; the real run refuses.
            code, out, _ = cli("shopify", "adopt", "--sku", "123", "--dry-run")
            assert code == 1 and f"refused: its items disagree (listings of one stock pool): {FIRST} shows 9, " \
                                  f"{SECOND} shows 7; say which to take with --from-item ITEM" in out
            code, _, err = cli("shopify", "adopt", "--sku", "123")
            assert code == 2 and err.startswith("dynafold: nothing adopted: 123: its items disagree")
            code, out, _ = cli("shopify", "adopt", "--all", "--from-item", FIRST, "--dry-run", "--json")
            [would] = json.loads(out)["skus"]
            assert code == 0 and (would["physical"], would["from_item"], would["then"]) == (9, FIRST,
                                                                                           [f"{SECOND}: 7 -> 9"])
            assert local_dynamo.store().stream_version("sku:123") == 4  # nothing recorded by a dry run

            status, adopted = api.admin("POST", "/shopify/adopt", {"skus": ["123"], "from_items": [FIRST]})
            assert status == 200 and adopted["adopted"] == 1 and adopted["skus"][0]["version"] == 5
            settle()  # the other listing is pushed the pool's count; the echo is ignored
            assert shop.levels == {(FIRST, HERE): 9, (SECOND, HERE): 9}
            sets = [c["variables"]["input"]["quantities"][0] for c in shop.calls if "inventorySetQuantities(" in c["query"]]
            assert [(s["inventoryItemId"], s["quantity"], s["compareQuantity"]) for s in sets] == [
                (f"gid://shopify/InventoryItem/{SECOND}", 9, 7)]
            assert [a["read"] for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_id"] == alert["alert_id"]] == [
                True]
            assert api.admin("POST", "/shopify/adopt", {"skus": ["123"]})[0] == 400  # counted now: no second adoption
            assert api.admin("POST", "/shopify/adopt", {"skus": ["NOPE"]})[0] == 404
            assert api.admin("POST", "/shopify/adopt", {"skus": ["123"], "all": True})[0] == 400

    recorded = [e for e in local_dynamo.store().read_stream("sku:123") if e.type.endswith("count_adopted.v1")]
    [event] = recorded
    assert event.data.adopted_by.startswith("admin API (request ")
    assert [(lv.inventory_item_id, lv.location_id, lv.available) for lv in event.data.levels] == [(FIRST, HERE, 9)]
    assert [(lv.inventory_item_id, lv.available) for lv in event.data.other_items] == [(SECOND, 7)]
