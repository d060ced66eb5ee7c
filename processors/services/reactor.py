"""The reactor Lambda: the second (and last) reader of the event stream, running side-effect rules.

Every effect is an append with an idempotency key derived from its cause, so redelivered
records and re-run batches change nothing. Rebuilds read the table, not the stream, so the
reactor never runs during one.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from processors.telemetry.logs import make_logger
from events.alerts import AlertRaised
from events.envelope import NewEvent, RecordedEvent
from events.errors import VersionConflict
from events.store import ANY, NO_STREAM, EventStore
from processors.telemetry.emf import count_by
from projections.alert_rules import AlertSettings, alerts_for
from projections.broadcast_rules import plan_broadcast
from projections.inventory import InventoryProjection, InventoryState
from projections.view_store import ViewStore
from processors.services.state_reader import state_at

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
SOURCE = "urn:dynafold:reactor"
_INVENTORY_CACHE_SIZE = 1_000
logger = make_logger("reactor")
metrics = Metrics(namespace=NAMESPACE, service="reactor")


def settings_from_env(env: Any = os.environ) -> AlertSettings:
    return AlertSettings(
        low_stock_threshold=int(env.get("DYNAFOLD_LOW_STOCK_THRESHOLD", "5")),
        per_sku_thresholds={k: int(v) for k, v in json.loads(env.get("DYNAFOLD_LOW_STOCK_THRESHOLDS", "{}")).items()},
    )


class Reactor:
    def __init__(self, store: EventStore, views: ViewStore, settings: AlertSettings,
                 storefront_url: str | None = None,
                 dispatch: Callable[[RecordedEvent], None] | None = None) -> None:
        self._store = store
        self._views = views
        self._settings = settings
        self._storefront_url = storefront_url
        self._dispatch = dispatch  # the delivery rule (processors/delivery_dispatch.py)
        # (stream, version) -> the SKU's state right after that version. Events never change, so an
        # entry never goes stale: a batch's consecutive events of one SKU read the tables once.
        self._inventory: OrderedDict[tuple[str, int], InventoryState] = OrderedDict()

    def react(self, event: RecordedEvent) -> list[AlertRaised]:
        before = after = None
        if event.stream.startswith("sku:"):
            before = self.inventory_at(event.stream, event.version - 1)
            after = InventoryProjection.apply(before, event)
            self._remember(event.stream, event.version, after)
            self.broadcast(event, before, after)
        raised = alerts_for(event, self._settings, before, after)
        for alert in raised:
            self.raise_alert(alert, cause=event)
        if self._dispatch is not None:
            self._dispatch(event)
        return raised

    def broadcast(self, cause: RecordedEvent, before: InventoryState, after: InventoryState) -> None:
        """Push a changed available count to the storefront (a broadcast event and a message to deliver)."""
        for plan in plan_broadcast(cause, before, after, self._storefront_url):
            result = self._store.append(plan.stream, list(plan.events), ANY, idempotency_key=plan.idempotency_key)
            if not result.deduplicated and plan.stream == cause.stream:
                metrics.add_metric("StockBroadcasts", MetricUnit.Count, 1)

    def raise_alert(self, alert: AlertRaised, cause: RecordedEvent | None = None) -> bool:
        """Append the alert once; True when this call raised it, False when it already was."""
        new = NewEvent("dynafold.alerts.raised.v1", alert, source=SOURCE,
                       correlation_id=cause.correlation_id if cause else None,
                       causation_id=cause.id if cause else None)
        try:
            result = self._store.append(f"alert:{alert.alert_id}", [new], NO_STREAM,
                                        idempotency_key=f"alert:{alert.alert_id}")
        except VersionConflict:
            return False  # raised before and its idempotency guard has expired: still raised once
        if result.deduplicated:
            return False
        count_by("AlertsRaised", "reactor", {"severity": alert.severity})
        return True

    def inventory_at(self, stream: str, version: int) -> InventoryState:
        """The SKU's inventory state right after `version` (view row caught up with the log)."""
        cached = self._inventory.get((stream, version))
        if cached is not None:
            return cached
        return state_at(self._store, self._views, InventoryProjection, stream, version)[0]

    def _remember(self, stream: str, version: int, state: InventoryState) -> None:
        self._inventory[(stream, version)] = state
        self._inventory.move_to_end((stream, version))
        while len(self._inventory) > _INVENTORY_CACHE_SIZE:
            self._inventory.popitem(last=False)
