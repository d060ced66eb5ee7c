"""The reactor Lambda: the second (and last) reader of the event stream, running side-effect rules.

Every effect is an append with an idempotency key derived from its cause, so redelivered
records and re-run batches change nothing. Rebuilds read the table, not the stream, so the
reactor never runs during one.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from processors.telemetry.logs import make_logger
from events.alerts import AlertRaised
from events.envelope import RecordedEvent
from events.ports import EventLog
from events.store import ANY
from projections.reactor.settings import AlertSettings
from projections.reactor.reaction import Append, Count, RaiseAlert, Reaction, Rule
from projections.reactor.rules import REACTOR_RULES
from projections.reactor.settings import ShopifySyncSettings
from projections.view import View
from projections.ports import ViewRows
from processors.services.alerts import append_alert
from processors.services.state_reader import state_at

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
SERVICE = "reactor"
SOURCE = "urn:dynafold:reactor"
_STATE_CACHE_SIZE = 1_000
logger = make_logger(SERVICE)
metrics = Metrics(namespace=NAMESPACE, service="reactor")


class Reactor:
    """Runs the reactor's rules (``REACTOR_RULES``) on each event and carries out their effects."""

    def __init__(self, store: EventLog, views: ViewRows, settings: AlertSettings,
                 storefront_url: str | None = None,
                 dispatch: Callable[[RecordedEvent], None] | None = None,
                 rules: tuple[Rule, ...] = REACTOR_RULES,
                 shopify: ShopifySyncSettings | None = None,
                 shopify_push: Callable[[RecordedEvent], Any] | None = None) -> None:
        self._store = store
        self._views = views
        self._settings = settings
        self._storefront_url = storefront_url
        self._dispatch = dispatch  # the delivery rule (processors/services/delivery_dispatch.py)
        self._rules = rules
        self._shopify = shopify  # None: Shopify pushes are not configured
        self._shopify_push = shopify_push  # carries out planned pushes (processors/services/shopify_push.py)
        # (view, stream, version) -> the stream's state right after that version. Events never change,
        # so an entry never goes stale: a batch's consecutive events of one stream read the tables once.
        self._states: OrderedDict[tuple[str, str, int], Any] = OrderedDict()

    def react(self, event: RecordedEvent) -> list[AlertRaised]:
        raised: list[AlertRaised] = []
        around: dict[str, tuple[Any, Any]] = {}  # view name -> (before, after) this event
        for rule in self._rules:
            if not rule.reacts_to(event):
                continue
            reaction = Reaction(event, self._settings, self._storefront_url, shopify=self._shopify)
            if rule.view is not None:
                if rule.view.name not in around:
                    around[rule.view.name] = self._around(rule.view, event)
                before, after = around[rule.view.name]
                reaction = Reaction(event, self._settings, self._storefront_url, before, after, self._shopify)
            for effect in rule.plan(reaction):
                if isinstance(effect, RaiseAlert):
                    self.raise_alert(effect.alert, cause=event)
                    raised.append(effect.alert)
                elif isinstance(effect, Append):
                    self._append(effect)
                elif isinstance(effect, Count):
                    metrics.add_metric(effect.metric, MetricUnit.Count, 1)
        if self._dispatch is not None:
            self._dispatch(event)
        if self._shopify_push is not None:
            self._shopify_push(event)
        return raised

    def _append(self, effect: Append) -> None:
        plan = effect.plan
        result = self._store.append(plan.stream, list(plan.events), ANY, idempotency_key=plan.idempotency_key)
        if not result.deduplicated and effect.metric:
            metrics.add_metric(effect.metric, MetricUnit.Count, 1)

    def raise_alert(self, alert: AlertRaised, cause: RecordedEvent | None = None) -> bool:
        """Append the alert once; True when this call raised it, False when it already was."""
        return append_alert(self._store, alert, SERVICE, cause)

    def _around(self, view: View[Any], event: RecordedEvent) -> tuple[Any, Any]:
        """The stream's state in ``view`` right before and right after ``event``."""
        before = self.state_at(view, event.stream, event.version - 1)
        after = view.apply(before, event)
        self._remember((view.name, event.stream, event.version), after)
        return before, after

    def state_at(self, view: View[Any], stream: str, version: int) -> Any:
        """The stream's state in ``view`` right after `version` (view row caught up with the log)."""
        cached = self._states.get((view.name, stream, version))
        if cached is not None:
            return cached
        return state_at(self._store, self._views, view, stream, version)[0]

    def _remember(self, key: tuple[str, str, int], state: Any) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > _STATE_CACHE_SIZE:
            self._states.popitem(last=False)
