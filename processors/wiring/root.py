"""The composition root: every function's handler is built here, for Lambda and the local stack alike.

What differs between AWS and a laptop is only *where things go* — the DynamoDB endpoint, the job
queue, the dead-letter sink, the mailer, the order source, secrets, the clock. Those come in as
``Adapters``; everything else (stores, settings, the reactor, the worker, the monitor, the API's
dependencies, each handler) is constructed by ``Root`` the same way on both sides, so the local
stack cannot do something AWS does not. ``wiring.aws.aws_root`` and ``local.stack`` are the only
callers that build ``Adapters``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from processors.adapters.clock import SYSTEM_CLOCK, Clock
from processors.adapters.outbound import Resolver, system_resolver
from processors.wiring.config import Tables

if TYPE_CHECKING:  # the collaborators' types; imported where built so each function loads only its own
    from events.ports import EventLog
    from processors.adapters.dead_letters import DeadLetterSink
    from processors.adapters.delivery_queue import DeliveryQueue
    from processors.adapters.mailers import MailUnconfigured, Mailer
    from processors.adapters.order_sources import OrderSource
    from processors.adapters.secrets import Secrets
    from processors.api.deps import ApiDeps, ApiSettings
    from processors.console.deps import ConsoleDeps
    from processors.services.delivery_worker import DeliverySettings, DeliveryWorker
    from processors.services.error_monitor import ErrorMonitor, MonitorSettings
    from processors.services.reactor import Reactor
    from processors.adapters.shopify_admin import ShopifyAdminClient, ShopifyAdminSettings
    from processors.services.rebuild_compare import CompareStep, VersionsWriter
    from processors.services.rebuild_segment import SegmentWorker
    from processors.services.shopify_push import ShopifyPusher
    from processors.services.stream_failures import StreamFailures
    from projections.reactor.settings import AlertSettings
    from projections.batch import BatchProjector
    from projections.ports import ViewRows
    from projections.queries import ViewQueries
    from projections.reactor.settings import ShopifySyncSettings

Handler = Callable[[dict[str, Any], Any], Any]
FUNCTIONS = ("projector", "reactor", "ingest", "error-monitor", "delivery-worker", "stream-failures",
             "rebuild-segment", "rebuild-compare", "console")


@dataclass(frozen=True)
class Adapters:
    """Where things go. Factories, not instances: a function builds only the adapters it uses, so
    the projector's cold start never creates an SQS client or reads a secret."""

    dynamodb: Callable[[], Any]
    tables: Tables
    delivery_queue: Callable[[], DeliveryQueue]
    dead_letters: Callable[[], DeadLetterSink]
    mailer: Callable[[], Mailer | MailUnconfigured]  # unconfigured: notices become alerts
    order_source: Callable[[Secrets], OrderSource]
    secrets: Callable[[], Secrets]
    streams: Callable[[], Any]  # the DynamoDB Streams client (the failure consumer reads failed batches back)
    view_versions: Callable[[], VersionsWriter]  # where a rebuild's switch writes the active versions
    clock: Clock = SYSTEM_CLOCK
    resolve: Resolver = system_resolver
    random_fraction: Callable[[], float] = field(default_factory=lambda: random.SystemRandom().random)


@dataclass(frozen=True)
class Settings:
    """Every tunable, read once from the environment (the template's function settings on AWS)."""

    alerts: AlertSettings
    delivery: DeliverySettings
    monitor: MonitorSettings
    api: ApiSettings
    storefront_url: str | None = None
    shopify_sync: ShopifySyncSettings | None = None  # None: no pushes to Shopify
    shopify_admin: ShopifyAdminSettings | None = None  # where pushes go (None: planned, never sent)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, secrets: Secrets | None = None) -> "Settings":
        from processors.api.deps import ApiSettings
        from processors.services.delivery_worker import DeliverySettings
        from processors.services.error_monitor import MonitorSettings
        from processors.adapters.shopify_admin import ShopifyAdminSettings
        from projections.reactor.settings import ShopifySyncSettings

        return cls(alert_settings_from_env(env), DeliverySettings.from_env(env, secrets),
                   MonitorSettings.from_env(env), ApiSettings.from_env(env),
                   env.get("DYNAFOLD_STOREFRONT_URL") or None, ShopifySyncSettings.from_env(env),
                   ShopifyAdminSettings.from_env(env))


def alert_settings_from_env(env: Mapping[str, str] = os.environ) -> AlertSettings:
    from projections.reactor.settings import AlertSettings

    return AlertSettings(
        low_stock_threshold=int(env.get("DYNAFOLD_LOW_STOCK_THRESHOLD", "5")),
        per_sku_thresholds={k: int(v) for k, v in json.loads(env.get("DYNAFOLD_LOW_STOCK_THRESHOLDS", "{}")).items()},
    )


class Root:
    """Builds each collaborator once, on first use."""

    def __init__(self, adapters: Adapters, settings: Callable[[], Settings]) -> None:
        self.adapters = adapters
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        return self._settings()

    @cached_property
    def client(self) -> Any:
        return self.adapters.dynamodb()

    @cached_property
    def secrets(self) -> Secrets:
        return self.adapters.secrets()

    @cached_property
    def store(self) -> EventLog:
        from events.store import EventStore

        tables = self.adapters.tables
        # One clock for everything appended, so a fast-forwarded local run stays in causal order.
        return EventStore(self.client, tables.events, tables.idempotency, clock=self.adapters.clock.now)

    @cached_property
    def views(self) -> ViewRows:
        from projections.view_store import ViewStore

        return ViewStore(self.client, self.adapters.tables.views)

    @cached_property
    def queries(self) -> ViewQueries:
        from projections.queries import ViewQueries

        return ViewQueries(self.client, self.adapters.tables.views)

    @cached_property
    def projector(self) -> BatchProjector:
        from projections.batch import BatchProjector
        from projections.registry import VIEWS

        return BatchProjector(self.views, self.store.read_stream, VIEWS)

    @cached_property
    def reactor(self) -> Reactor:
        from processors.services.delivery_dispatch import DeliveryDispatch
        from processors.services.reactor import Reactor

        dispatch = DeliveryDispatch(self.store, self.adapters.delivery_queue(), self.adapters.dead_letters(),
                                    self.adapters.clock)
        return Reactor(self.store, self.views, self.settings.alerts, self.settings.storefront_url, dispatch=dispatch,
                       shopify=self.settings.shopify_sync, shopify_push=self.shopify_pusher)

    @cached_property
    def shopify_pusher(self) -> ShopifyPusher | None:
        """The push effect, when the Admin API is configured (DYNAFOLD_SHOPIFY_SHOP or _ADMIN_URL)."""
        from processors.services.shopify_push import ShopifyPusher

        if self.settings.shopify_admin is None:
            return None
        return ShopifyPusher(self.store, lambda: self.shopify_admin)

    @cached_property
    def shopify_admin(self) -> ShopifyAdminClient:
        from processors.adapters.shopify_admin import ShopifyAdminClient, ShopifyUnavailable

        settings, token = self.settings.shopify_admin, self.secrets.get("shopify_admin_token")
        if settings is None or not token:
            # No token: nothing is sent unauthenticated; the record is retried until one is configured.
            raise ShopifyUnavailable(
                "the Shopify Admin API access token (DYNAFOLD_SHOPIFY_ADMIN_TOKEN[_PARAM]) is not set")
        return ShopifyAdminClient(settings, token)

    @cached_property
    def delivery_worker(self) -> DeliveryWorker:
        from processors.services.delivery_worker import DeliveryWorker

        return DeliveryWorker(self.store, self.adapters.delivery_queue(), self.settings.delivery,
                              clock=self.adapters.clock, random_fraction=self.adapters.random_fraction,
                              resolve=self.adapters.resolve)

    @cached_property
    def error_monitor(self) -> ErrorMonitor:
        return self.build_error_monitor()

    def build_error_monitor(self, mailer: Mailer | None = None, clock: Callable[[], datetime] | None = None,
                            settings: MonitorSettings | None = None) -> ErrorMonitor:
        """The monitor; a local run may send to another outbox or look at another moment."""
        from processors.services.error_monitor import ErrorMonitor

        return ErrorMonitor(self.store, self.queries, self.adapters.order_source(self.secrets),
                            mailer or self.adapters.mailer(), settings or self.settings.monitor,
                            clock=clock or self.adapters.clock.now)

    @cached_property
    def stream_failures(self) -> StreamFailures:
        from processors.services.alerts import append_alert
        from processors.services.stream_failures import SERVICE, StreamFailures

        return StreamFailures(self.adapters.streams(), lambda alert: append_alert(self.store, alert, SERVICE))

    @cached_property
    def api_deps(self) -> ApiDeps:
        from processors.api.deps import ApiDeps

        return ApiDeps(self.store, self.views, self.queries, self.secrets, self.settings.api,
                       resolve=self.adapters.resolve, clock=self.adapters.clock.now)

    @cached_property
    def console_deps(self) -> ConsoleDeps:
        """The console's reads go through the services the CLI and the read routes use."""
        from events.log_index import EventIndex
        from processors.console.deps import ConsoleDeps

        return ConsoleDeps(self.store, EventIndex(self.client, self.adapters.tables.events), self.queries,
                           self.adapters.tables.views, self.secrets, grace_period=self.settings.monitor.grace,
                           clock=self.adapters.clock.now)

    @cached_property
    def rebuild_segment_worker(self) -> SegmentWorker:
        from processors.services.rebuild_segment import SegmentWorker

        return SegmentWorker(self.client, self.adapters.tables.events,
                             active=lambda: dict(self.adapters.tables.views))

    @cached_property
    def rebuild_compare_step(self) -> CompareStep:
        from processors.services.rebuild_compare import CompareStep

        return CompareStep(self.client, self.store, lambda: dict(self.adapters.tables.views),
                           self.adapters.view_versions)

    def handler(self, function: str) -> Handler:
        """The Lambda handler of one function (see FUNCTIONS), over this root's collaborators."""
        if function == "projector":
            from processors.handlers import projector

            return projector.make_handler(self.projector)
        if function == "reactor":
            from processors.handlers import reactor

            return reactor.make_handler(self.reactor)
        if function == "ingest":
            from processors.api.app import make_handler

            return make_handler(self.api_deps)
        if function == "error-monitor":
            from processors.handlers import error_monitor

            return error_monitor.make_handler(self.error_monitor)
        if function == "delivery-worker":
            from processors.handlers import delivery_worker

            return delivery_worker.make_handler(self.delivery_worker)
        if function == "stream-failures":
            from processors.handlers import stream_failures

            return stream_failures.make_handler(self.stream_failures)
        if function == "rebuild-segment":
            from processors.handlers import rebuild_segment

            return rebuild_segment.make_handler(self.rebuild_segment_worker)
        if function == "rebuild-compare":
            from processors.handlers import rebuild_compare

            return rebuild_compare.make_handler(self.rebuild_compare_step)
        if function == "console":
            from processors.console.app import make_handler as make_console_handler

            return make_console_handler(self.console_deps)
        raise ValueError(f"unknown function {function!r}; expected one of {', '.join(FUNCTIONS)}")
