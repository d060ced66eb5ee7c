"""A local Shopify (issue 11 §6): a loopback stand-in for exactly the Admin API parts dynafold uses,
which sends ``inventory_levels/update`` webhooks back the way Shopify does.

Implemented, as documented (see events/shopify_admin.py for the pages):
- ``POST /admin/api/<version>/graphql.json`` with ``X-Shopify-Access-Token`` (a wrong or missing
  token: HTTP 401 with ``errors``); ``inventorySetQuantities`` with ``name: "available"``,
  ``compareQuantity`` (mismatch: user error ``COMPARE_QUANTITY_STALE``, nothing written),
  ``INVALID_INVENTORY_ITEM`` / ``ITEM_NOT_STOCKED_AT_LOCATION`` / ``INVALID_QUANTITY_NEGATIVE``;
  the ``inventoryItem { inventoryLevel(locationId) { quantities(names: ["available"]) } }`` query;
  ``extensions.cost`` on every answer.
- Throttling, scripted: ``throttle(n)`` answers the next n calls ``THROTTLED`` (HTTP 200, Shopify's
  body and ``throttleStatus``), ``rate_limit(n, retry_after)`` answers HTTP 429 with Retry-After.
- Webhooks: each change of a level (our mutation, a merchant's edit with ``merchant_sets``, a
  sale with ``sell``) queues an ``inventory_levels/update`` whose body is Shopify's InventoryLevel
  (``inventory_item_id``, ``location_id``, ``available``, ``updated_at``, ``admin_graphql_api_id``;
  no SKU, no id of ours) with Shopify's headers and an HMAC-SHA256 of the body under the app
  secret. ``deliver()`` posts the queued ones to the configured address (explicit, so tests decide
  the order); ``pending`` shows them.

Anything else it is asked answers a GraphQL error: a stand-in that guessed would hide bugs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from events.shopify_admin import DEFAULT_API_VERSION

_PATH = re.compile(r"^/admin/api/(?P<version>[0-9]{4}-[0-9]{2})/graphql\.json$")
_GID = re.compile(r"^gid://shopify/(?P<kind>InventoryItem|Location)/(?P<id>[0-9]+)$")
_COST = {"requestedQueryCost": 10, "actualQueryCost": 10,
         "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0}}
SHOP = "dynafold-demo.myshopify.com"


@dataclass
class Webhook:
    topic: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ShopifyStandIn:
    """``levels``: (inventory item id, location id) -> available, for the items stocked there."""

    token: str
    app_secret: str
    webhook_url: str | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    levels: dict[tuple[str, str], int] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    pending: list[Webhook] = field(default_factory=list)
    _throttled: int = 0
    _limited: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    # --------------------------------------------------------------- the merchant's and the shop's side
    def stock(self, item: str, location: str, available: int) -> None:
        """The item is stocked at the location (no webhook: the shop's state before the story starts)."""
        self.levels[(item, location)] = available

    def merchant_sets(self, item: str, location: str, available: int) -> None:
        """A manual edit in Shopify's admin: the level changes and Shopify tells its apps."""
        self._change(item, location, available)

    def sell(self, item: str, location: str, quantity: int) -> None:
        """A sale: Shopify lowers its own level (the orders/create webhook is the caller's to send)."""
        self._change(item, location, self.levels[(item, location)] - quantity)

    def throttle(self, calls: int) -> None:
        self._throttled = calls

    def rate_limit(self, calls: int, retry_after: str = "1") -> None:
        self._limited = [retry_after] * calls

    def deliver(self) -> list[int]:
        """Post the queued webhooks (oldest first) to ``webhook_url``; their HTTP statuses."""
        statuses = []
        while self.pending:
            webhook = self.pending.pop(0)
            if self.webhook_url is None:
                continue
            request = urllib.request.Request(self.webhook_url, data=webhook.body, headers=webhook.headers,  # noqa: S310
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own loopback webhook URL
                    statuses.append(response.status)
            except urllib.error.HTTPError as error:
                statuses.append(error.code)
        return statuses

    def _change(self, item: str, location: str, available: int) -> None:
        self.levels[(item, location)] = available
        now = self.clock().astimezone(timezone.utc)
        body = json.dumps({
            "inventory_item_id": int(item), "location_id": int(location), "available": available,
            "updated_at": now.isoformat(timespec="seconds"),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
        }).encode()
        digest = base64.b64encode(hmac.new(self.app_secret.encode(), body, hashlib.sha256).digest()).decode()
        self.pending.append(Webhook("inventory_levels/update", body, {
            "Content-Type": "application/json", "X-Shopify-Topic": "inventory_levels/update",
            "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-API-Version": DEFAULT_API_VERSION, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }))

    # --------------------------------------------------------------- the Admin API
    def answer(self, path: str, token: str | None, body: bytes) -> tuple[int, dict[str, str], Any]:
        if not _PATH.match(path):
            return 404, {}, {"errors": "Not Found"}
        if not token or not hmac.compare_digest(token, self.token):
            return 401, {}, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        with self._lock:
            if self._limited:
                limited = {"errors": "Exceeded 2 calls per second for api client."}
                return 429, {"Retry-After": self._limited.pop(0)}, limited
            if self._throttled:
                self._throttled -= 1
                return 200, {}, {"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None, "throttleStatus": {
                        "maximumAvailable": 2000.0, "currentlyAvailable": 5, "restoreRate": 100.0}}}}
            try:
                request = json.loads(body)
                query, variables = request["query"], request.get("variables") or {}
            except (ValueError, KeyError, TypeError):
                return 400, {}, {"errors": [{"message": "Bad Request: expected {query, variables}"}]}
            self.calls.append(request)
            if "inventorySetQuantities(" in query:
                data = self._set(variables.get("input") or {})
            elif "inventoryLevel(" in query and "inventoryItem(" in query:
                data = self._read(variables)
            else:
                return 200, {}, {"errors": [{"message": "the stand-in implements inventorySetQuantities and "
                                                        "inventoryItem.inventoryLevel only"}]}
            return 200, {}, {"data": data, "extensions": {"cost": _COST}}

    def _set(self, given: dict[str, Any]) -> dict[str, Any]:
        def failed(code: str, message: str, index: int) -> dict[str, Any]:
            return {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [
                {"code": code, "field": ["input", "quantities", str(index)], "message": message}]}}

        if given.get("name") != "available":
            return {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [
                {"code": "INVALID_NAME", "field": ["input", "name"],
                 "message": "The quantity name must be either 'available' or 'on_hand'."}]}}
        changes, writes = [], []
        for index, row in enumerate(given.get("quantities") or []):
            item, location = _id(row.get("inventoryItemId"), "InventoryItem"), _id(row.get("locationId"), "Location")
            if item is None or not any(key[0] == item for key in self.levels):
                return failed("INVALID_INVENTORY_ITEM", "The specified inventory item could not be found.", index)
            if location is None or (item, location) not in self.levels:
                return failed("ITEM_NOT_STOCKED_AT_LOCATION",
                              "The specified inventory item is not stocked at the location.", index)
            quantity = row.get("quantity")
            if not isinstance(quantity, int) or quantity < 0:
                return failed("INVALID_QUANTITY_NEGATIVE", "The quantity can't be negative.", index)
            if not given.get("ignoreCompareQuantity"):
                if "compareQuantity" not in row:
                    return failed("COMPARE_QUANTITY_REQUIRED", "The compareQuantity argument must be given to each "
                                  "quantity or ignored using ignoreCompareQuantity.", index)
                if row["compareQuantity"] != self.levels[(item, location)]:
                    return failed("COMPARE_QUANTITY_STALE", "The compareQuantity value does not match persisted value.",
                                  index)
            writes.append((item, location, quantity))
            changes.append({"name": "available", "delta": quantity - self.levels[(item, location)],
                            "quantityAfterChange": quantity})
        for item, location, quantity in writes:
            self._change(item, location, quantity)
        return {"inventorySetQuantities": {"userErrors": [], "inventoryAdjustmentGroup": {
            "reason": given.get("reason"), "referenceDocumentUri": given.get("referenceDocumentUri"),
            "changes": changes}}}

    def _read(self, variables: dict[str, Any]) -> dict[str, Any]:
        item, location = _id(variables.get("item"), "InventoryItem"), _id(variables.get("location"), "Location")
        if item is None or not any(key[0] == item for key in self.levels):
            return {"inventoryItem": None}
        if location is None or (item, location) not in self.levels:
            return {"inventoryItem": {"inventoryLevel": None}}
        return {"inventoryItem": {"inventoryLevel": {"quantities": [
            {"name": "available", "quantity": self.levels[(item, location)]}]}}}

    # --------------------------------------------------------------- the server
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not serving (use it as a context manager)")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> "ShopifyStandIn":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, headers, payload = stand_in.answer(self.path, self.headers.get("X-Shopify-Access-Token"),
                                                           self.rfile.read(length))
                raw = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _id(gid: Any, kind: str) -> str | None:
    match = _GID.match(gid) if isinstance(gid, str) else None
    return match["id"] if match and match["kind"] == kind else None
