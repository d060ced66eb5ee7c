"""Shopify's GraphQL Admin API over HTTP (issue 11 §5): the adapter that sets and reads inventory levels.

The contract (documents, answers, the pinned version) is pure and lives in events/shopify_admin.py;
this module only sends: ``POST {shop}/admin/api/{version}/graphql.json`` with the app's access token
in ``X-Shopify-Access-Token`` (https://shopify.dev/docs/api/admin-graphql#authentication), and
waits out throttling: the GraphQL cost throttle (THROTTLED, wait from ``throttleStatus``) and HTTP
429 (``Retry-After``), each wait bounded, the whole call bounded. A call still throttled at the end
raises ``ShopifyUnavailable``: the reactor's record is then retried by the stream (a larger backoff).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from events.errors import DynafoldError
from events.shopify_admin import (
    DEFAULT_API_VERSION,
    SUPPORTED_VERSIONS,
    LevelAnswer,
    SetAnswer,
    Throttled,
    level_request,
    read_level_answer,
    read_set_answer,
    set_request,
)
from processors.adapters.shopify_shop import AdminOrigin, InvalidShopifyEndpoint, admin_origin_from_env, parse_origin

# (url, body, headers, timeout) -> (HTTP status, parsed JSON body or None, Retry-After header)
Post = Callable[[str, bytes, Mapping[str, str], float], tuple[int, Any, str | None]]


class ShopifyUnavailable(DynafoldError):
    """Shopify kept throttling (or failing) within the call's bounds; retry the work later."""


@dataclass(frozen=True)
class ShopifyAdminSettings:
    """``base_url``: https://<shop>.myshopify.com, or the local stand-in on loopback http; anything
    else is refused here (processors/adapters/shopify_shop.py), and requests go to ``origin`` only."""

    base_url: str
    api_version: str = DEFAULT_API_VERSION
    timeout_seconds: float = 10.0
    max_wait_seconds: float = 20.0  # throttle waits within one call, summed
    max_tries: int = 5
    origin: AdminOrigin = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.api_version not in SUPPORTED_VERSIONS:
            raise ValueError(f"DYNAFOLD_SHOPIFY_API_VERSION {self.api_version!r} is not one this code implements "
                             f"({', '.join(SUPPORTED_VERSIONS)}); see events/shopify_admin.py")
        object.__setattr__(self, "origin", parse_origin(self.base_url))

    @property
    def endpoint(self) -> str:
        """Built from the checked origin and a supported version: nothing of the configured text but its host."""
        return f"{self.origin.url}/admin/api/{self.api_version}/graphql.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ShopifyAdminSettings | None":
        """DYNAFOLD_SHOPIFY_SHOP (``<shop>.myshopify.com``) or DYNAFOLD_SHOPIFY_ADMIN_URL (a loopback http
        stand-in); DYNAFOLD_SHOPIFY_API_VERSION. A bad value raises one line naming it."""
        origin = admin_origin_from_env(env)
        if origin is None:
            return None
        return cls(origin.url, env.get("DYNAFOLD_SHOPIFY_API_VERSION", "").strip() or DEFAULT_API_VERSION)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302/303 with every header but the body's, the access token included,
    to wherever Location points. A redirect is answered as what it is (HTTP 3xx, refused) instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, Any, str | None]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - the checked origin only
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, _json(response.read()), response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read()), error.headers.get("Retry-After")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise ShopifyUnavailable(f"Shopify Admin API unreachable: {error}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


@dataclass
class ShopifyAdminClient:
    settings: ShopifyAdminSettings
    token: str = field(repr=False)
    post: Post = post_json
    sleep: Callable[[float], None] = time.sleep

    def set_available(self, push_id: str, inventory_item_id: str, location_id: str, quantity: int,
                      compare_quantity: int | None) -> SetAnswer:
        request = set_request(push_id, inventory_item_id, location_id, quantity, compare_quantity)
        return self._call(request, read_set_answer)

    def available_at(self, inventory_item_id: str, location_id: str) -> LevelAnswer:
        return self._call(level_request(inventory_item_id, location_id), read_level_answer)

    def _call(self, request: dict[str, Any], read: Callable[[int, Any, str | None, datetime], Any]) -> Any:
        body = json.dumps(request).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "X-Shopify-Access-Token": self.token}
        endpoint = self.settings.endpoint
        if not self.settings.origin.admits(endpoint):  # the token goes to the checked host or nowhere
            raise InvalidShopifyEndpoint(f"refusing to send the Shopify access token to {endpoint!r}")
        waited = 0.0
        for attempt in range(self.settings.max_tries):
            posted = self.post(endpoint, body, headers, self.settings.timeout_seconds)
            status, parsed, retry_after = posted
            answer = read(status, parsed, retry_after, datetime.now(timezone.utc))
            if not isinstance(answer, Throttled):
                return answer
            needed = max(answer.seconds, 0.25 * 2 ** attempt)  # Shopify's hint, at least an exponential step
            wait = min(needed, self.settings.max_wait_seconds - waited)
            if wait < needed or attempt == self.settings.max_tries - 1:
                break
            self.sleep(wait)
            waited += wait
        raise ShopifyUnavailable(f"Shopify kept throttling for {waited:.1f}s ({self.settings.max_tries} tries)")
