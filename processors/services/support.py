"""The support questions' services (and the redrive they lead to), built once by the composition root.

The CLI (`dynafold explain ...`, `dynafold deliveries redrive`, through ``Context.root()``) and the
HTTP routes (through ``ApiDeps``) ask the same instances, so both give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from events.delivery_policy import RetryPolicy
from events.ports import EventLog
from processors.services.explain_deliveries import DeliveryExplainer
from processors.services.explain_orders import OrderExplainer
from processors.services.explain_skus import SkuExplainer
from processors.services.redrive import Redriver
from projections.queries import ViewQueries
from projections.reactor.settings import ShopifySyncSettings


@dataclass(frozen=True)
class Support:
    orders: OrderExplainer
    deliveries: DeliveryExplainer
    skus: SkuExplainer
    redrive: Redriver

    @classmethod
    def build(cls, store: EventLog, queries: ViewQueries, clock: Callable[[], datetime], *, grace: timedelta,
              retry: RetryPolicy, timeout_seconds: float, shopify: ShopifySyncSettings | None = None) -> "Support":
        """Over the root's store and views, with the monitor's grace period, the workers' retry policy and
        the Shopify sync's settings (None: no pushes configured)."""
        deliveries = DeliveryExplainer(store, queries, retry, timeout_seconds, clock)
        return cls(OrderExplainer(store, queries, grace, clock), deliveries, SkuExplainer(store, shopify),
                   Redriver(store, queries, deliveries))
