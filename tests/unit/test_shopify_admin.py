"""Issue 11 §5: the Admin API adapter against the local Shopify stand-in (loopback HTTP, no AWS),
the pure reading of Shopify's answers, and the push effect's compare-and-set re-decision."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

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
from processors.adapters.shopify_shop import SHOP_DOMAIN, InvalidShopifyEndpoint, is_loopback
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


# --- issue 18 §5: the access token goes to <shop>.myshopify.com, or to a loopback stand-in, or nowhere

# Each passed the old `endswith(".myshopify.com")` check and sent the token to evil.example or to the
# instance metadata address.
HOSTILE_SHOPS = ("evil.example/.myshopify.com", "evil.example#.myshopify.com", "evil.example?.myshopify.com",
                 "x.myshopify.com@evil.example/.myshopify.com", "169.254.169.254/x.myshopify.com",
                 "evil.example\\.myshopify.com", "evil.example:443/.myshopify.com", "a.b.myshopify.com",
                 "-shop.myshopify.com", "shop.myshopify.com.", "shop.myshopify.com/", "shop.myshopify.com\n.evil",
                 "sh op.myshopify.com", "shöp.myshopify.com", ".myshopify.com", "x" * 64 + ".myshopify.com")
# The override is for the local stand-in only (README: "loopback http only"); https passed to anywhere.
HOSTILE_OVERRIDES = ("https://169.254.169.254", "https://10.0.0.1", "https://[fd00:ec2::254]", "http://10.0.0.1",
                     "http://169.254.169.254/latest/", "https://demo.myshopify.com", "http://127.0.0.1@evil.example",
                     "http://evil.example#@127.0.0.1", "http://localhost.evil.example", "http://127.0.0.1:8081/x",
                     "http://127.0.0.1:8081?x=1", "http://user@127.0.0.1:8081", "http://[::1%25eth0]:1",
                     "http://127.0.0.1:99999", "http://127.0.0.1\t.evil.example", "ftp://127.0.0.1", "127.0.0.1:8081")


@pytest.mark.parametrize("shop", HOSTILE_SHOPS)
def test_a_shop_outside_shopifys_domain_grammar_is_refused_in_one_line(shop):
    with pytest.raises(InvalidShopifyEndpoint, match=r"^DYNAFOLD_SHOPIFY_SHOP must be") as refused:
        ShopifyAdminSettings.from_env({"DYNAFOLD_SHOPIFY_SHOP": shop})
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("url", HOSTILE_OVERRIDES)
def test_the_admin_url_override_takes_only_loopback_http(url):
    with pytest.raises(InvalidShopifyEndpoint, match=r"^DYNAFOLD_SHOPIFY_ADMIN_URL is for a local stand-in") as refused:
        ShopifyAdminSettings.from_env({"DYNAFOLD_SHOPIFY_ADMIN_URL": url})
    assert "\n" not in str(refused.value)


def test_good_shops_and_stand_ins_are_rebuilt_from_their_parts():
    def endpoint(env: dict[str, str]) -> str:
        settings = ShopifyAdminSettings.from_env(env)
        assert settings is not None
        return settings.endpoint

    assert endpoint({"DYNAFOLD_SHOPIFY_SHOP": " My-Shop_2.myshopify.com "}) == \
        "https://my-shop_2.myshopify.com/admin/api/2025-10/graphql.json"
    assert endpoint({"DYNAFOLD_SHOPIFY_ADMIN_URL": "http://127.0.0.1:8081/"}).startswith("http://127.0.0.1:8081/admin/")
    assert endpoint({"DYNAFOLD_SHOPIFY_ADMIN_URL": "http://[::1]:8081"}).startswith("http://[::1]:8081/admin/")
    assert endpoint({"DYNAFOLD_SHOPIFY_ADMIN_URL": "http://localhost:9"}).startswith("http://localhost:9/admin/")
    # Constructed directly (the demo, the tests) the same two kinds hold.
    with pytest.raises(InvalidShopifyEndpoint):
        ShopifyAdminSettings("https://evil.example/.myshopify.com")


_URL_PIECES = st.sampled_from([
    "https://", "http://", "//", "shop", "x", "evil.example", ".myshopify.com", "myshopify.com", "169.254.169.254",
    "10.0.0.1", "127.0.0.1", "localhost", "[::1]", "[fd00:ec2::254]", "/", "#", "?", "@", "user@", ":", ":443",
    ":8081", "\\", "%2f", "%40", "%2e", ".", "-", "_", " ", "\t", "\n", "\x00", "\u00e4", "xn--",
])
_NOISE = st.lists(st.one_of(_URL_PIECES, st.text(alphabet="./@#?:%\\[]-_ax1", max_size=2)), max_size=8).map("".join)
# Near misses of the two good forms, so that many examples are accepted and really sent.
_SHOPISH = st.tuples(
    st.just("") | st.sampled_from(["https://", "evil.example/", "x@", "169.254.169.254/", "shop.myshopify.com@"]),
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,5}", fullmatch=True),
    st.just("") | st.sampled_from(["/", "#", "?x", "@evil.example", ":443", ".", "/.myshopify.com"]),
).map(lambda parts: f"{parts[0]}{parts[1]}.myshopify.com{parts[2]}")
_LOOPBACKISH = st.tuples(
    st.just("http://") | st.sampled_from(["https://", "", "//", "http://user@", "http://evil.example#@"]),
    st.sampled_from(["127.0.0.1", "localhost", "[::1]", "127.1.2.3", "[::ffff:127.0.0.1]", "evil.example",
                     "10.0.0.1", "[fd00:ec2::254]", "169.254.169.254", "0.0.0.0", "[::]"]),
    st.sampled_from(["", ":8081", ":0", ":65535", ":99999"]),
    st.just("") | st.sampled_from(["/", "@evil.example", "#@evil.example", "/x", "\\@evil.example"]),
).map("".join)
_URL_LIKE = st.one_of(_NOISE, _SHOPISH, _LOOPBACKISH)
_CONFIGURED = st.one_of(st.tuples(st.just("DYNAFOLD_SHOPIFY_SHOP"), _SHOPISH | _URL_LIKE),
                        st.tuples(st.just("DYNAFOLD_SHOPIFY_ADMIN_URL"), _LOOPBACKISH | _URL_LIKE))


@settings(max_examples=300, deadline=None)
@given(configured=_CONFIGURED)
@example(configured=("DYNAFOLD_SHOPIFY_SHOP", "Shop-1.myshopify.com"))  # both kinds are sent at least once
@example(configured=("DYNAFOLD_SHOPIFY_ADMIN_URL", "http://[::1]:8081/"))
@example(configured=("DYNAFOLD_SHOPIFY_SHOP", "evil.example/.myshopify.com"))  # issue 18 §5: went to evil.example
def test_no_request_leaves_the_shop_or_the_loopback_stand_in(configured):
    """Whatever the configured text, the real HTTP path connects only to <shop>.myshopify.com:443 (the
    shop as configured) or, overridden, to a loopback address; the socket is intercepted, nothing leaves."""
    variable, value = configured
    try:
        admin_settings = ShopifyAdminSettings.from_env({variable: value}) if value.strip() else None
    except ValueError:  # InvalidShopifyEndpoint, or an unsupported version
        event("refused")
        return  # refused at start: no request at all
    if admin_settings is None:
        return
    event(f"{variable}: sent")
    connected: list[tuple[str, int]] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connected.append(address)
        raise ConnectionRefusedError("intercepted")

    admin = ShopifyAdminClient(replace(admin_settings, max_tries=1), "shpat_secret", sleep=lambda _: None)
    proxies = {k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")}
    with mock.patch("socket.create_connection", create_connection), \
            mock.patch.dict(os.environ, dict.fromkeys(proxies, "")), pytest.raises(ShopifyUnavailable):
        admin.available_at(ITEM, HERE)
    [(host, port)] = connected
    if variable == "DYNAFOLD_SHOPIFY_SHOP":
        assert SHOP_DOMAIN.fullmatch(host) and host.lower() == value.strip().lower() and port == 443, (value, host)
    else:
        assert is_loopback(host), (value, host)


def test_a_redirect_is_not_followed_and_the_token_stays_put():
    """urllib follows a 302 answer to a POST with every header but the body's: the token went along."""
    received: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Elsewhere) as elsewhere:
        class Redirecting(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(302)
                self.send_header("Location", f"{elsewhere}/steal")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        with serve(Redirecting) as shop_url:
            admin = ShopifyAdminClient(ShopifyAdminSettings(shop_url), "shpat_secret")
            assert admin.set_available("p", ITEM, HERE, 1, 4) == Refused("HTTP 302")
    assert received == []


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_lambda_function_configured_for_another_host_fails_at_init_with_one_line():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DYNAFOLD_SHOPIFY_SHOP": "evil.example/.myshopify.com"}
    result = subprocess.run([sys.executable, "-c", "import processors.functions.reactor"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "processors.adapters.shopify_shop.InvalidShopifyEndpoint: DYNAFOLD_SHOPIFY_SHOP must be the shop's "
        "domain, one label then .myshopify.com (e.g. my-shop.myshopify.com), not 'evil.example/.myshopify.com'")


def test_the_local_stack_refuses_to_start_with_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    from processors.cli.main import main
    from processors.local import engine

    def no_engine(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine must not start")

    monkeypatch.setattr(engine, "LocalEngine", no_engine)
    monkeypatch.setenv("DYNAFOLD_SHOPIFY_ADMIN_URL", "https://169.254.169.254")
    assert main(["up", "--in-memory", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "dynafold: DYNAFOLD_SHOPIFY_ADMIN_URL is for a local stand-in: a loopback http URL "
        "(e.g. http://127.0.0.1:8081), not 'https://169.254.169.254'; a real shop goes in DYNAFOLD_SHOPIFY_SHOP"]
