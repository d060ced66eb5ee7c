"""What routes need, built once per Lambda container (or once by the local stack)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from events.order_rules import Rule, rule_set
from events.shopify_items import shopify_id
from processors.adapters.outbound import Resolver, TargetPolicy, system_resolver
from processors.adapters.secrets import Secrets

if TYPE_CHECKING:  # built where used (the composition root): the cold import never loads these
    from events.ports import EventLog
    from projections.ports import ViewRows
    from projections.queries import ViewQueries
    from processors.services.adoption import ShopifyAdoption
    from processors.services.event_trace import EventTrace
    from processors.services.personal_data import PersonalData
    from processors.services.support import Support

DEFAULT_MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class ApiSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    targets: TargetPolicy = field(default_factory=TargetPolicy)
    order_rules: tuple[Rule, ...] = field(default_factory=rule_set)
    # Shopify location ids whose levels count (summed); empty = every location (issue 11 §3).
    shopify_locations: frozenset[str] = frozenset()
    # This deployment's shop (`<shop>.myshopify.com`, lower case); "" = not configured. A shop/redact
    # for another shop erases nothing here.
    shopify_shop: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ApiSettings":
        disabled = [name.strip() for name in env.get("DYNAFOLD_DISABLED_RULES", "").split(",") if name.strip()]
        return cls(
            max_body_bytes=int(env.get("DYNAFOLD_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            targets=TargetPolicy.from_env(env),
            order_rules=rule_set(disabled),
            shopify_locations=frozenset(shopify_id(part) for part in
                                        env.get("DYNAFOLD_SHOPIFY_LOCATIONS", "").split(",") if part.strip()),
            shopify_shop=env.get("DYNAFOLD_SHOPIFY_SHOP", "").strip().lower(),
        )


@dataclass(frozen=True)
class ApiDeps:
    store: EventLog
    views: ViewRows
    queries: ViewQueries
    secrets: Secrets
    settings: ApiSettings = field(default_factory=ApiSettings)
    resolve: Resolver = system_resolver
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    event_trace: Callable[[], EventTrace] | None = None  # the trace read service (GET /trace/{id})
    personal_data: Callable[[], PersonalData] | None = None  # erasure and exports (privacy routes and webhooks)
    # Built by the composition root on first use (a request that never asks never builds it).
    status: Callable[[], Any] | None = None  # processors.services.status.StatusService
    adoption: Callable[[], ShopifyAdoption] | None = None  # onboarding (POST /shopify/adopt)
    # The support answers and the redrive (the root always wires them).
    support: Callable[[], Support] | None = None

    @classmethod
    def connect(cls, client: Any, tables: Any, secrets: Secrets, settings: ApiSettings, **kwargs: Any) -> "ApiDeps":
        """Deps over one DynamoDB client and a ``processors.wiring.config.Tables``, with the support
        answers under the default grace period and retry policy."""
        from events.store import EventStore
        from projections.queries import ViewQueries
        from projections.view_store import ViewStore

        store, queries = EventStore.over(client, tables), ViewQueries(client, tables.views)

        @functools.cache
        def support() -> Support:
            from processors.services.delivery_worker import DeliverySettings
            from processors.services.error_monitor import MonitorSettings
            from processors.services.support import Support

            delivery = DeliverySettings()
            return Support.build(store, queries, kwargs.get("clock") or (lambda: datetime.now(timezone.utc)),
                                 grace=MonitorSettings().grace, retry=delivery.retry,
                                 timeout_seconds=delivery.timeout_seconds, shopify=None)

        from processors.services.adoption import ShopifyAdoption
        from processors.services.event_trace import event_trace

        built: dict[str, Any] = {"event_trace": lambda: event_trace(client, tables.events),
                                 "adoption": lambda: ShopifyAdoption(store, queries), "support": support}
        return cls(store, ViewStore(client, tables.views), queries, secrets, settings, **{**built, **kwargs})
