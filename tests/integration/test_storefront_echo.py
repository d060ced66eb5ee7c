"""Seed 004's loop hazard: dynafold pushes counts to the storefront, the storefront pushes counts back.

Two systems wired back to back (the local stack and a fake Shopify that echoes every count it
receives as an inventory_levels/update webhook) settle after one exchange: our own updates come
back carrying their tx id and are ignored, and a real change made on the storefront is taken in
once and pushed back once.

(Issue 11: echoes are recognised by value, since Shopify carries none of our ids; a merchant's own
edit -- a level that differs from what Shopify should show -- is drift, handled by the drift rule.)
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import replace

from processors.api.deps import ApiSettings
from processors.local.api_client import ApiClient
from processors.adapters.clock import ManualClock
from processors.services.delivery_worker import DeliverySettings
from processors.local.services import LocalApi
from processors.local.stack import LocalStack
from processors.adapters.outbound import TargetPolicy
from processors.adapters.secrets import Secrets
from processors.local.webhook_receiver import Reply, WebhookReceiver
from processors.adapters.webhook_signing import new_secret
from processors.local.tables import local_tables
from tests.shopify_fixtures import payload

LOOPBACK = TargetPolicy(allow_http=True, allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))


def test_the_storefront_and_dynafold_back_to_back_do_not_loop(local_dynamo, tmp_path):
    """Shopify echoes each count as a real inventory_levels/update (item and location ids, no SKU,
    no id of ours). A level never changes our count (the count is the truth), so an echo changes
    nothing and nothing is pushed again: the loop is closed by construction."""
    secrets = Secrets.of(shopify="shpss", signing=new_secret(os.urandom(32)), admin_api_key="key")
    level = payload("inventory_levels/update")
    with WebhookReceiver(secrets.get("signing")) as shopify:
        shopify.script("/inventory", Reply.ok())
        stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                           access_key=local_dynamo.access_key, storefront_url=shopify.url("/inventory"),
                           clock=ManualClock(),
                           delivery=replace(DeliverySettings(), targets=LOOPBACK, signing_secret=secrets.get("signing")))
        with LocalApi(stack, secrets, ApiSettings(targets=LOOPBACK)).serve() as server:
            api = ApiClient(server.url, secrets)
            assert api.admin("PUT", f"/shopify/items/{level['inventory_item_id']}", {"sku": "SKU-1"})[0] == 200
            assert api.admin("PUT", "/inventory/SKU-1/count", {"physical": 10})[0] == 200
            answered, rounds = 0, 0
            while True:
                stack.drain(wait_for_deliveries=True)
                pushes = shopify.received("/inventory")[answered:]
                if not pushes:
                    break
                rounds += 1
                for index, push in enumerate(pushes, start=answered):
                    echo = {**level, "available": push.json()["available"]}
                    status, reply = api.shopify("inventory_levels/update", echo, f"wh-echo-{index}",
                                                event_id=f"ev-echo-{index}")
                    assert status == 200 and reply["appended"][0]["stream"] == "sku:SKU-1"
                answered += len(pushes)
                assert rounds <= 3, "the two systems keep talking"

    counts = [push.json()["available"] for push in shopify.received("/inventory")]
    assert counts == [10]  # one push for the one real change, none for its echo
    types = [e.type.split(".")[2] for e in stack.store.read_stream("sku:SKU-1")]
    assert types == ["shopify_item_linked", "physical_count_set", "stock_broadcast", "shopify_level"]
