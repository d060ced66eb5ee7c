"""`dynafold explain sku` and `GET /inventory/{sku}/explanation`: "why does Shopify show 3 when we have 5?",
read from the SKU's whole history (NotFound without one). The words come from
``projections.inventory.explain``.
"""

from __future__ import annotations

from events.ports import EventLog
from projections.explanation import Explanation
from projections.inventory.explain import explain_sku
from projections.reactor.settings import ShopifySyncSettings


class SkuExplainer:
    def __init__(self, store: EventLog, shopify: ShopifySyncSettings | None) -> None:
        self._store = store
        self._shopify = shopify  # the sync's push location and echo window (None: pushes not configured)

    def explain(self, sku: str) -> Explanation:
        return explain_sku(sku, self._store.read_stream(f"sku:{sku}"), self._shopify)
