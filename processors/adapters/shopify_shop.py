"""Where the Shopify Admin API token may go (issue 18 §5): the merchant's ``<shop>.myshopify.com`` over
https, or the local stand-in on loopback over plain http. Nothing else.

A shop value is checked against Shopify's own shop-domain grammar, not by its ending (``evil.example/
.myshopify.com`` ends the same way), and the URL requests go to is rebuilt from the checked parts,
so no userinfo, path, query or fragment of the configured text survives into it. Light on purpose
(no HTTP client, no pydantic): the Lambda functions check their configuration with it at init.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from events.errors import DynafoldError

SHOP_ENV, ADMIN_URL_ENV = "DYNAFOLD_SHOPIFY_SHOP", "DYNAFOLD_SHOPIFY_ADMIN_URL"

# Shopify's shop sanitizer, `sanitizeShop` in Shopify/shopify-api-js
# (packages/shopify-api/lib/utils/shop-validator.ts), accepts
# ^[a-zA-Z0-9][a-zA-Z0-9-_]*\.(myshopify\.com|shopify\.com|myshopify\.io)[/]*$. We keep its one label
# and the domain the Admin API is served from, drop the trailing slashes it tolerates (a host has
# none) and bound the label to DNS's 63 octets (RFC 1035 §2.3.4). template.yaml's ShopifyShop
# AllowedPattern is this same pattern (tests/unit/test_template_guards.py).
SHOP_DOMAIN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}\.myshopify\.com")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")  # urlsplit silently drops tabs and newlines: refuse them instead


class InvalidShopifyEndpoint(DynafoldError, ValueError):
    """A configured shop or Admin URL that could send the access token somewhere else."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return "%" not in host and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AdminOrigin:
    """Scheme, host and port of every Admin API request; only the two allowed kinds can be built."""

    scheme: str
    host: str
    port: int | None = None

    def __post_init__(self) -> None:
        shop = self.scheme == "https" and self.port is None and SHOP_DOMAIN.fullmatch(self.host) is not None
        stand_in = self.scheme == "http" and is_loopback(self.host)
        if not (shop or stand_in):
            raise InvalidShopifyEndpoint(
                f"the Shopify Admin API goes only to https://<shop>.myshopify.com or a loopback http "
                f"stand-in, not {self.scheme}://{self.host}" + (f":{self.port}" if self.port is not None else ""))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port is not None else "")

    def admits(self, url: str) -> bool:
        """Whether a request URL goes exactly here (checked again before every request)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        return (parts.scheme, parts.hostname, port) == (self.scheme, self.host, self.port) and "@" not in parts.netloc


def parse_origin(url: str) -> AdminOrigin:
    """A base URL with nothing but a scheme, a host and a port (a trailing "/" at most)."""
    refused = InvalidShopifyEndpoint(
        f"a Shopify Admin base URL is https://<shop>.myshopify.com or a loopback http URL, not {url!r}")
    if _UNSAFE.search(url):
        raise refused
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused from None
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment or not parts.hostname:
        raise refused
    return AdminOrigin(parts.scheme, parts.hostname, port)


def shop_origin(shop: str) -> AdminOrigin:
    if not SHOP_DOMAIN.fullmatch(shop):
        raise InvalidShopifyEndpoint(
            f"{SHOP_ENV} must be the shop's domain, one label then .myshopify.com "
            f"(e.g. my-shop.myshopify.com), not {shop!r}")
    return AdminOrigin("https", shop.lower())


def stand_in_origin(url: str) -> AdminOrigin:
    try:
        origin = parse_origin(url)
    except InvalidShopifyEndpoint:
        origin = None
    if origin is None or origin.scheme != "http":
        raise InvalidShopifyEndpoint(
            f"{ADMIN_URL_ENV} is for a local stand-in: a loopback http URL (e.g. http://127.0.0.1:8081), "
            f"not {url!r}; a real shop goes in {SHOP_ENV}")
    return origin


def admin_origin_from_env(env: Mapping[str, str] = os.environ) -> AdminOrigin | None:
    """DYNAFOLD_SHOPIFY_SHOP (``<shop>.myshopify.com``), or DYNAFOLD_SHOPIFY_ADMIN_URL (a loopback http
    stand-in, which wins when both are set); None when neither is. A bad value raises, naming it."""
    shop = env.get(SHOP_ENV, "").strip()
    override = env.get(ADMIN_URL_ENV, "").strip()
    origin = shop_origin(shop) if shop else None
    return stand_in_origin(override) if override else origin
