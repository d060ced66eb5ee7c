"""The support questions' read service (issue 19 §A): each answer is read here, through the ports,
and built by a pure function into a ``projections.explanation.Explanation``. The CLI (`dynafold
explain ...`, processors/cli/explain.py) and the HTTP routes (``GET /explain/...``) both get this
service from the composition root, so they answer the same.

A question is one method: read what it needs, hand it to its pure function.
"""

from __future__ import annotations

from events.ports import EventLog
from projections.explanation import Explanation
from projections.inventory.explain import explain_sku
from projections.reactor.settings import ShopifySyncSettings


class Explanations:
    def __init__(self, store: EventLog, shopify: ShopifySyncSettings | None) -> None:
        self._store = store
        self._shopify = shopify  # the sync's push location and echo window (None: pushes not configured)

    def sku(self, sku: str) -> Explanation:
        """"Why does Shopify show 3 when we have 5?": from the SKU's whole history (NotFound without one)."""
        return explain_sku(sku, self._store.read_stream(f"sku:{sku}"), self._shopify)
