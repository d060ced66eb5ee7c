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
    from events.keyring import KeyRing
    from events.ports import EventLog
    from events.sealing import Revealer, PersonalDataLog
    from processors.adapters.subject_keys import KeyWrapper
    from processors.services.personal_data import PersonalData
    from processors.adapters.dead_letters import DeadLetterSink
    from processors.adapters.function_logs import FunctionLogs
    from processors.adapters.delivery_queue import DeliveryQueue
    from processors.adapters.mailers import MailUnconfigured, Mailer
    from processors.adapters.order_sources import OrderSource
    from processors.adapters.secrets import Secrets
    from processors.api.deps import ApiDeps, ApiSettings
    from processors.console.deps import ConsoleDeps, ConsoleReads
    from processors.services.delivery_worker import DeliverySettings, DeliveryWorker
    from processors.services.adoption import ShopifyAdoption
    from processors.services.event_trace import EventTrace
    from processors.services.error_monitor import ErrorMonitor, MonitorSettings
    from processors.services.reactor import Reactor
    from processors.adapters.shopify_admin import ShopifyAdminClient, ShopifyAdminSettings
    from processors.services.rebuild_compare import CompareStep, VersionsWriter
    from processors.services.rebuild_segment import SegmentWorker
    from processors.services.shopify_push import ShopifyPusher
    from processors.services.stream_failures import StreamFailures
    from processors.services.alert_reads import AlertReads
    from processors.services.status import HealthSources, StatusService, StatusSettings
    from processors.services.support import Support
    from processors.services.targets import Targets
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
    function_logs: Callable[[], FunctionLogs]  # the functions' logs (`dynafold logs`): CloudWatch or local files
    key_wrapper: Callable[[], KeyWrapper]  # wraps the subjects' data keys: KMS, or the local stand-in
    health: Callable[[], HealthSources]  # what `dynafold status` reads: metrics, alarms, positions, rebuilds
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
    status: StatusSettings | None = None  # which metrics are the readers' (None: the defaults)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, secrets: Secrets | None = None) -> "Settings":
        from processors.api.deps import ApiSettings
        from processors.services.delivery_worker import DeliverySettings
        from processors.services.error_monitor import MonitorSettings
        from processors.adapters.shopify_admin import ShopifyAdminSettings
        from processors.services.status import StatusSettings
        from projections.reactor.settings import ShopifySyncSettings

        return cls(alert_settings_from_env(env), DeliverySettings.from_env(env, secrets),
                   MonitorSettings.from_env(env), ApiSettings.from_env(env),
                   env.get("DYNAFOLD_STOREFRONT_URL") or None, ShopifySyncSettings.from_env(env),
                   ShopifyAdminSettings.from_env(env), StatusSettings.from_env(env))


def check_startup_settings(env: Mapping[str, str] = os.environ) -> None:
    """Refuse to start on a setting whose mistake would leak something, before any record is handled:
    where the Shopify Admin API token goes. Lambda calls this at init (wiring/aws.py, so a bad value
    fails the function's Init phase with one line), the local stack before it starts anything."""
    from processors.adapters.shopify_shop import admin_origin_from_env

    admin_origin_from_env(env)


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
    def keyring(self) -> KeyRing:
        """The data subjects' keys this function uses, cached per invocation (see ``handler``)."""
        from events.keyring import KeyRing
        from processors.adapters.subject_keys import DynamoDbSubjectKeys

        return KeyRing(DynamoDbSubjectKeys(self.client, self.adapters.tables.keys, self.adapters.key_wrapper()))

    @cached_property
    def revealer(self) -> Revealer:
        """Seals personal values and reveals them (or ``[erased]``): the projector, the rebuild, the
        audit commands and the console show events through it."""
        from events.sealing import Revealer

        return Revealer(self.keyring)

    @cached_property
    def log(self) -> EventLog:
        """The event log as stored: personal values sealed, on reads too."""
        from events.store import EventStore

        # One clock for everything appended, so a fast-forwarded local run stays in causal order.
        return EventStore.over(self.client, self.adapters.tables, clock=self.adapters.clock.now)

    @cached_property
    def store(self) -> PersonalDataLog:
        """The log every service appends to and reads: personal values sealed on append, revealed on read."""
        from events.sealing import PersonalDataLog

        return PersonalDataLog(self.log, self.revealer)

    @cached_property
    def keyless_store(self) -> PersonalDataLog:
        """The same log for functions that never need a personal value (the reactor): what they
        append is still sealed, what they read stays sealed, so they need no key to read."""
        from events.sealing import PersonalDataLog

        return PersonalDataLog(self.log, self.revealer, reveal=False)

    @cached_property
    def personal_data(self) -> PersonalData:
        """Erasure (`dynafold forget`, the admin route, Shopify's redact webhooks) and data exports."""
        from processors.services.personal_data import PersonalData
        from projections.registry import VIEWS

        return PersonalData(self.store, self.keyring, VIEWS)

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

        # The live projector reads the event table's stream: it seals each stream's checkpoint.
        return BatchProjector(self.views, self.store.read_stream, VIEWS, seal=self.store.seal,
                              reveal=self.revealer.reveal)

    @cached_property
    def reactor(self) -> Reactor:
        from processors.services.delivery_dispatch import DeliveryDispatch
        from processors.services.reactor import Reactor

        dispatch = DeliveryDispatch(self.keyless_store, self.adapters.delivery_queue(), self.adapters.dead_letters(),
                                    self.adapters.clock)
        return Reactor(self.keyless_store, self.views, self.settings.alerts, self.settings.storefront_url,
                       dispatch=dispatch, shopify=self.settings.shopify_sync, shopify_push=self.shopify_pusher)

    @cached_property
    def shopify_pusher(self) -> ShopifyPusher | None:
        """The push effect, when the Admin API is configured (DYNAFOLD_SHOPIFY_SHOP or _ADMIN_URL)."""
        from processors.services.shopify_push import ShopifyPusher

        if self.settings.shopify_admin is None:
            return None
        return ShopifyPusher(self.keyless_store, lambda: self.shopify_admin)

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

        return StreamFailures(self.adapters.streams(),
                              lambda alert, cause: append_alert(self.keyless_store, alert, SERVICE, cause))

    @cached_property
    def shopify_adoption(self) -> ShopifyAdoption:
        """Onboarding: Shopify's level as the first count of SKUs never counted here (CLI and admin route)."""
        from processors.services.adoption import ShopifyAdoption

        return ShopifyAdoption(self.store, self.queries)

    @cached_property
    def support(self) -> Support:
        """The support questions' answers and the redrive: what `dynafold explain` and the routes ask."""
        from processors.services.support import Support

        delivery = self.settings.delivery
        return Support.build(self.store, self.queries, self.adapters.clock.now, grace=self.settings.monitor.grace,
                             retry=delivery.retry, timeout_seconds=delivery.timeout_seconds,
                             shopify=self.settings.shopify_sync)

    @cached_property
    def api_deps(self) -> ApiDeps:
        from processors.api.deps import ApiDeps

        return ApiDeps(self.store, self.views, self.queries, self.secrets, self.settings.api,
                       resolve=self.adapters.resolve, clock=self.adapters.clock.now,
                       event_trace=lambda: self.event_trace, status=lambda: self.status,
                       adoption=lambda: self.shopify_adoption, support=lambda: self.support,
                       personal_data=lambda: self.personal_data)

    @cached_property
    def function_logs(self) -> FunctionLogs:
        """Where the functions' log lines are read (`dynafold logs`)."""
        return self.adapters.function_logs()

    @cached_property
    def event_trace(self) -> EventTrace:
        """What an event caused and what caused it, or what a request caused (the audit trace)."""
        from processors.services.event_trace import event_trace

        return event_trace(self.client, self.adapters.tables.events)

    @cached_property
    def status(self) -> StatusService:
        """Is everything caught up and healthy? (`dynafold status`, `GET /status`, the console's Health)"""
        from processors.services.status import StatusService, StatusSettings

        views = self.adapters.tables.views
        source = getattr(views, "source", None)  # where a switch is recorded (SSM, views.json)
        # Metrics are stamped with the wall clock wherever the functions run (EMF), so the status
        # looks at the last hour of the wall clock even when a local run fast-forwards its own.
        return StatusService(self.adapters.health(), self.queries, views,
                             str(source) if source is not None else "the deployed tables",
                             self.settings.status or StatusSettings())

    @cached_property
    def alert_reads(self) -> AlertReads:
        """Marking alerts read (`POST /alerts/{id}/read`, `POST /alerts/read`, `dynafold alerts read`)."""
        from processors.services.alert_reads import AlertReads

        return AlertReads(self.store, self.queries.alerts)

    @cached_property
    def targets(self) -> Targets:
        """Webhook targets disabled after 410 Gone, and enabling them again (`dynafold targets`, the console)."""
        from processors.services.targets import Targets

        return Targets(self.store)

    @cached_property
    def console_deps(self) -> ConsoleDeps:
        """The console reads and acts through the services the CLI and the routes use, each built
        when a page first asks for it (sign-in, the first page of a cold container, builds none)."""
        from processors.console.deps import ConsoleDeps, ConsoleServices

        services = ConsoleServices(support=lambda: self.support, status=lambda: self.status,
                                   alert_reads=lambda: self.alert_reads, event_trace=lambda: self.event_trace,
                                   adoption=lambda: self.shopify_adoption, targets=lambda: self.targets)
        return ConsoleDeps(self._console_reads, self.secrets, services, clock=self.adapters.clock.now)

    def _console_reads(self) -> ConsoleReads:
        from events.log_index import EventIndex
        from processors.console.deps import ConsoleReads

        return ConsoleReads(self.store, EventIndex(self.client, self.adapters.tables.events), self.queries,
                            self.adapters.tables.views, grace_period=lambda: self.settings.monitor.grace)

    @cached_property
    def rebuild_segment_worker(self) -> SegmentWorker:
        from processors.services.rebuild_segment import SegmentWorker

        return SegmentWorker(self.client, self.adapters.tables.events,
                             active=lambda: dict(self.adapters.tables.views), reveal=self.revealer.reveal)

    @cached_property
    def rebuild_compare_step(self) -> CompareStep:
        from processors.services.rebuild_compare import CompareStep

        return CompareStep(self.client, self.store, lambda: dict(self.adapters.tables.views),
                           self.adapters.view_versions)

    def handler(self, function: str) -> Handler:
        """The Lambda handler of one function (see FUNCTIONS), over this root's collaborators; every
        invocation starts with no data key cached (one destroyed meanwhile is never used again)."""
        return self.per_invocation(self._handler(function))

    def per_invocation(self, handle: Handler) -> Handler:
        """``handle`` starting each invocation with no data key cached."""

        def invoke(event: dict[str, Any], context: Any) -> Any:
            if "keyring" in self.__dict__:
                self.keyring.begin_invocation()
            return handle(event, context)

        return invoke

    def _handler(self, function: str) -> Handler:
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
