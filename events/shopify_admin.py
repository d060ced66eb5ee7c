"""Shopify's GraphQL Admin API as dynafold uses it (issue 11 §5): requests built and answers read, pure.

Pinned API version: ``2025-10`` (``DEFAULT_API_VERSION``; ``DYNAFOLD_SHOPIFY_API_VERSION`` overrides).
In it, ``inventorySetQuantities`` takes ``input: {name, reason, referenceDocumentUri, quantities:
[{inventoryItemId, locationId, quantity, compareQuantity}]}``; unless ``ignoreCompareQuantity`` is
true it only writes when the persisted quantity equals ``compareQuantity`` and otherwise answers
the user error ``COMPARE_QUANTITY_STALE``
(https://shopify.dev/docs/api/admin-graphql/2025-10/mutations/inventorySetQuantities,
https://shopify.dev/docs/api/admin-graphql/2025-04/enums/InventorySetQuantitiesUserErrorCode).
Newer versions change the contract: from 2026-01 an ``@idempotent(key:)`` directive is accepted,
from 2026-04 it is required and each quantity carries ``changeFromQuantity`` instead
(``CHANGE_FROM_QUANTITY_STALE``) -- moving past 2026-01 means changing this module, not a setting
(``SUPPORTED_VERSIONS`` refuses such a version at start-up).

The level is read with ``inventoryItem(id) { inventoryLevel(locationId) { quantities(names:
["available"]) { name quantity } } }`` (https://shopify.dev/docs/api/admin-graphql/2025-10/objects/InventoryLevel).

Rate limits (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): a throttled call
answers ``errors: [{message: "Throttled", extensions: {code: "THROTTLED"}}]`` with
``extensions.cost.throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}`` and
``requestedQueryCost``; the wait is the missing points over the restore rate. An HTTP 429 carries
``Retry-After`` (seconds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from events.delivery_policy import parse_retry_after

_DELAY_SECONDS = re.compile(r"[0-9]+")  # Retry-After's delay-seconds: read without a clock
_NO_CLOCK = datetime(1970, 1, 1, tzinfo=timezone.utc)  # delay-seconds never look at it

DEFAULT_API_VERSION = "2025-10"
SUPPORTED_VERSIONS = ("2024-10", "2025-01", "2025-04", "2025-07", "2025-10")
REASON = "correction"  # one of Shopify's inventory change reasons
REFERENCE_PREFIX = "urn:dynafold:shopify-push:"  # the reference document: our push, for Shopify's history

SET_QUANTITIES = """mutation inventorySetQuantities($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { reason referenceDocumentUri changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}"""

READ_LEVEL = """query inventoryLevel($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
  }
}"""


def item_gid(inventory_item_id: str) -> str:
    return f"gid://shopify/InventoryItem/{inventory_item_id}"


def location_gid(location_id: str) -> str:
    return f"gid://shopify/Location/{location_id}"


def set_request(push_id: str, inventory_item_id: str, location_id: str, quantity: int,
                compare_quantity: int | None) -> dict[str, Any]:
    """The ``inventorySetQuantities`` call for one location, compare-and-set."""
    return {"query": SET_QUANTITIES, "variables": {"input": {
        "name": "available", "reason": REASON, "referenceDocumentUri": REFERENCE_PREFIX + push_id,
        "quantities": [{"inventoryItemId": item_gid(inventory_item_id), "locationId": location_gid(location_id),
                        "quantity": quantity, "compareQuantity": compare_quantity}],
    }}}


def level_request(inventory_item_id: str, location_id: str) -> dict[str, Any]:
    variables = {"item": item_gid(inventory_item_id), "location": location_gid(location_id)}
    return {"query": READ_LEVEL, "variables": variables}


@dataclass(frozen=True)
class Throttled:
    """Wait ``seconds`` and ask again."""

    seconds: float


@dataclass(frozen=True)
class Applied:
    pass


@dataclass(frozen=True)
class CompareStale:
    """Shopify holds something else than ``compareQuantity`` there: read the level, decide again."""

    message: str


@dataclass(frozen=True)
class Refused:
    """A permanent refusal (unknown item or location, not stocked there, bad token, ...)."""

    reason: str


@dataclass(frozen=True)
class Level:
    available: int | None  # None: the item is not stocked at the location


SetAnswer = Applied | CompareStale | Refused | Throttled
LevelAnswer = Level | Refused | Throttled


def _wait_for(body: Mapping[str, Any], default: float) -> float:
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost.get("requestedQueryCost", 0)) - float(status.get("currentlyAvailable", 0))
        rate = float(status.get("restoreRate", 0))
    except (TypeError, ValueError):
        return default
    return max(0.0, math.ceil(missing / rate * 10) / 10) if rate > 0 else default


def _errors(status: int, body: Any, retry_after: str | None, now: datetime | None) -> Refused | Throttled | None:
    """The answer when the call as a whole failed (HTTP error or top-level GraphQL errors), else None."""
    if status == 429:
        # The project's one Retry-After reading (RFC 9110: ASCII delay-seconds or an HTTP-date, never
        # raising). A date is read against the caller's clock; without one, or for a header that is
        # neither form, 1 s.
        seconds = None
        if retry_after is not None and (now is not None or _DELAY_SECONDS.fullmatch(retry_after.strip(" \t"))):
            seconds = parse_retry_after(retry_after, now or _NO_CLOCK)
        return Throttled(1.0 if seconds is None else seconds)
    if status >= 500:
        return Throttled(1.0)  # Shopify's side: retried like a throttle, bounded by the caller
    if status != 200 or not isinstance(body, Mapping):
        return Refused(f"HTTP {status}")
    errors = body.get("errors") or []
    if errors:
        codes = {str((error.get("extensions") or {}).get("code", "")) for error in errors if isinstance(error, Mapping)}
        if "THROTTLED" in codes:
            return Throttled(_wait_for(body, 1.0))
        first = errors[0].get("message", "") if isinstance(errors[0], Mapping) else str(errors[0])
        return Refused(f"GraphQL error: {first}"[:500])
    return None


def read_set_answer(status: int, body: Any, retry_after: str | None = None, now: datetime | None = None) -> SetAnswer:
    failed = _errors(status, body, retry_after, now)
    if failed is not None:
        return failed
    payload = ((body.get("data") or {}).get("inventorySetQuantities")) or {}
    user_errors = payload.get("userErrors") or []
    if not user_errors:
        return Applied()
    codes = [str(error.get("code")) for error in user_errors]
    if "COMPARE_QUANTITY_STALE" in codes:
        return CompareStale(str(user_errors[codes.index("COMPARE_QUANTITY_STALE")].get("message", "")))
    return Refused("; ".join(f"{error.get('code')}: {error.get('message')}" for error in user_errors)[:500])


def read_level_answer(status: int, body: Any, retry_after: str | None = None,
                      now: datetime | None = None) -> LevelAnswer:
    failed = _errors(status, body, retry_after, now)
    if failed is not None:
        return failed
    item = (body.get("data") or {}).get("inventoryItem")
    if item is None:
        return Refused("inventory item not found")
    level = item.get("inventoryLevel")
    if level is None:
        return Level(None)
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return Level(int(quantity["quantity"]))
    return Level(None)
