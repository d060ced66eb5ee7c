"""Shopify's real webhook bodies (tests/fixtures/shopify, sources in its README) and the headers Shopify sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"


def payload(topic: str) -> dict[str, Any]:
    """The fixture body of a topic, e.g. ``payload("inventory_levels/update")``."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{topic.replace('/', '_')}.json").read_text())
    return loaded


def raw(topic: str) -> bytes:
    return (FIXTURES / f"{topic.replace('/', '_')}.json").read_bytes()


def named(stem: str) -> dict[str, Any]:
    """A fixture that is not its topic's main sample, e.g. ``named("products_create_shared_sku")``."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{stem}.json").read_text())
    return loaded
