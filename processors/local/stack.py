"""The local stack: the same handlers as on AWS, fed by the real DynamoDB Local stream.

Two stream runners (projector and reactor, as on AWS the only two readers of a shard) with the
batch settings of the template's event source mappings, checkpoints under the state directory,
and one on-failure destination: a local stand-in of the stream failure queue, drained through
the same stream-failures handler as on AWS, which turns each record into a `record_failed` alert.
The reactor's delivery rule feeds a local job queue (the SQS stand-in, under the state directory)
that the same delivery worker handler drains; dead-lettered messages land in ``delivery-dlq.jsonl``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from events.envelope import parse_time
from processors.handlers import projector
from processors.services import delivery_worker, reactor, stream_failures
from processors.adapters.aws import dynamodb_client, streams_client
from processors.local.function_logs import local_function_logs
from processors.local.outbox import OutboxMailer
from processors.adapters.order_sources import order_source_from_env
from processors.adapters.secrets import Secrets
from processors.adapters.subject_keys import KMS_STAND_IN, LocalKeyWrapper
from processors.adapters.shopify_admin import ShopifyAdminSettings
from processors.wiring.root import Adapters, Root, Settings
from processors.adapters.clock import SYSTEM_CLOCK, Clock
from processors.wiring.config import Tables
from processors.adapters.view_versions import LocalVersions
from processors.local.tables import VERSIONS_FILE
from processors.operations.tables import database_identity
from processors.adapters.delivery_queue import SQS_MAX_BATCH
from processors.local.queues import LocalDeadLetters, LocalSqsQueue
from processors.local.lambda_logs import LambdaLogRouter
from processors.local.emf_metrics import EmfMetrics
from processors.local.platform_metrics import PLATFORM_DIR, PlatformMetrics
from processors.local.reader_positions import CheckpointPositions
from processors.local.rebuilds import LocalRebuilds
from processors.local.template_alarms import TemplateAlarms
from processors.services.status import HealthSources, StatusSettings
from processors.adapters.outbound import Resolver, system_resolver
from processors.local.stream_runner import (
    Handler,
    LambdaContext,
    StreamRunner,
    settings_from_template,
    timeout_from_template,
)
from projections.reactor.settings import AlertSettings
from projections.reactor.settings import ShopifySyncSettings

CONSUMERS = {"projector": "ProjectorFunction", "reactor": "ReactorFunction"}
# The local stack's name: its functions are dynafold-<service>, its alarms dynafold-<alarm>.
LOCAL_STACK_NAME = "dynafold"
QUEUE_AGE_REPORT_SECONDS = 60.0  # SQS reports a queue's metrics once a minute
# The SQS-fed functions: handler name -> the template's function (its Timeout) and its local queue.
QUEUE_CONSUMERS = {"delivery-worker": "DeliveryWorkerFunction", "stream-failures": "StreamFailuresFunction"}
# The Powertools loggers of the functions the stack runs (they exist once their modules are imported).
LOGGER_NAMES = (projector.logger.service, reactor.logger.service, delivery_worker.logger.service,
                stream_failures.logger.service)
_REGION = "us-east-1"
logger = logging.getLogger(__name__)


@dataclass
class LocalStack:
    endpoint_url: str
    tables: Tables
    state_dir: Path
    access_key: str | None = None  # with region: which of DynamoDB Local's databases (None: the environment's)
    region: str | None = None
    alert_settings: AlertSettings | None = None  # default: from the environment, as on AWS
    logs: LambdaLogRouter | None = None  # where handlers' stdout goes (else the terminal)
    log_files: Path | None = None  # where its functions' logs are read (default: the router's, else <state dir>/logs)
    storefront_url: str | None = None  # where stock broadcasts are delivered (none: no broadcasts)
    clock: Clock = SYSTEM_CLOCK  # delivery delays and webhook timestamps; tests fast-forward a ManualClock
    delivery: delivery_worker.DeliverySettings | None = None  # default: from the environment
    random_fraction: Callable[[], float] = field(default_factory=lambda: random.SystemRandom().random)
    resolve: Resolver = system_resolver
    secrets: Secrets | None = None  # default: from the environment
    shopify_sync: ShopifySyncSettings | None = None  # default: from the environment
    shopify_admin: ShopifyAdminSettings | None = None  # default: from the environment (the stand-in's URL)
    # The KMS stand-in's master key (default <state dir>/kms-stand-in.key). Like an account's KMS key
    # it outlives any one stack: a demo keeps its run in a temporary directory but its key beside the
    # operator's --state-dir, where the commands run afterwards find it.
    kms_stand_in: Path | None = None

    def __post_init__(self) -> None:
        self.client = dynamodb_client(self.endpoint_url, access_key=self.access_key, region=self.region)
        self.delivery_queue = LocalSqsQueue(self.state_dir / "delivery-jobs.json", self.clock)
        # As the template's StreamFailureQueue: visibility 6x the consumer's timeout, 5 receives.
        self.stream_failure_queue = LocalSqsQueue(
            self.state_dir / "stream-failures.json", self.clock,
            visibility_timeout=6 * timeout_from_template("StreamFailuresFunction"),
            queue_name="dynafold-stream-failures")
        streams = streams_client(self.endpoint_url, access_key=self.access_key, region=self.region)
        self.dead_letters = LocalDeadLetters(self.state_dir / "delivery-dlq.jsonl")
        # The functions' logs (their EMF metrics) and what the stand-ins report as AWS would.
        self.logs_dir = self.logs.directory if self.logs is not None else self.log_files or self.state_dir / "logs"
        self.platform_metrics = PlatformMetrics(self.logs.directory / PLATFORM_DIR) if self.logs is not None else None
        self._queue_age_reported = float("-inf")
        secrets = self.secrets = self.secrets or Secrets(os.environ)  # typed: not None from here on
        adapters = Adapters(
            dynamodb=lambda: self.client, tables=self.tables,
            delivery_queue=lambda: self.delivery_queue, dead_letters=lambda: self.dead_letters,
            mailer=lambda: OutboxMailer(self.state_dir / "outbox.jsonl"),
            order_source=lambda secrets: order_source_from_env(os.environ, secrets),
            secrets=lambda: secrets, streams=lambda: streams, clock=self.clock, resolve=self.resolve,
            view_versions=self._view_versions, health=lambda: self._health(streams),
            function_logs=lambda: local_function_logs(self.logs_dir),
            key_wrapper=lambda: LocalKeyWrapper(self.kms_stand_in or self.state_dir / KMS_STAND_IN),
            random_fraction=self.random_fraction)
        # The very root Lambda uses; only the adapters above and these settings are the stack's own.
        self.root = Root(adapters, self._settings)
        self.store = self.root.store
        self.views = self.root.views
        self.reactor = self.root.reactor
        handlers = {name: self.root.handler(name) for name in (*CONSUMERS, *QUEUE_CONSUMERS)}
        if self.logs is not None:
            handlers = {name: self.logs.route(f"dynafold-{name}", handler) for name, handler in handlers.items()}
        self._queue_handlers = {name: handlers.pop(name) for name in QUEUE_CONSUMERS}
        self.runners = {
            name: StreamRunner(
                streams, self.client, self.tables.events, handlers[name],
                settings_from_template(logical_id),
                checkpoint_dir=self.state_dir / "checkpoints", name=name,
                failure_destination=self.stream_failure_queue,  # both mappings' DestinationConfig.OnFailure
                timeout_seconds=timeout_from_template(logical_id),  # past it, a batch fails as on Lambda
                function_name=f"{LOCAL_STACK_NAME}-{name}", platform_metrics=self.platform_metrics,
                clock=self.clock.now,
            )
            for name, logical_id in CONSUMERS.items()
        }

    def _settings(self) -> Settings:
        settings = Settings.from_env(os.environ, self.secrets)
        return replace(settings, alerts=self.alert_settings or settings.alerts,
                       delivery=self.delivery or settings.delivery,
                       storefront_url=self.storefront_url,
                       shopify_sync=self.shopify_sync or settings.shopify_sync,
                       shopify_admin=self.shopify_admin or settings.shopify_admin,
                       status=replace(settings.status or StatusSettings(), stack=LOCAL_STACK_NAME,
                                      failure_queue=self.stream_failure_queue.queue_name))

    def _health(self, streams: Any) -> HealthSources:
        """What `dynafold status` reads locally: the functions' EMF lines and the stand-ins' platform
        lines, the template's alarms over them, the runners' checkpoints, the rebuilds' progress files."""
        metrics = EmfMetrics(self.logs_dir)
        namespace = (self.root.settings.status or StatusSettings()).namespace
        alarms = TemplateAlarms(metrics, stack=LOCAL_STACK_NAME, namespace=namespace,
                                queues={"StreamFailureQueue": self.stream_failure_queue.queue_name})
        positions = CheckpointPositions(streams, self.client, self.tables.events, self.state_dir / "checkpoints",
                                        self.stream_failure_queue, readers=tuple(CONSUMERS))
        return HealthSources(metrics, alarms, positions, LocalRebuilds(self.state_dir / "rebuilds"))

    def _view_versions(self) -> LocalVersions:
        """Where a rebuild's switch writes: the very file these tables follow (as on AWS, where the
        functions read and the compare step writes one SSM parameter); tables pinned to versions
        follow no file, so a switch is recorded beside the stack's state."""
        source = getattr(self.tables.views, "source", None)
        if isinstance(source, LocalVersions):
            return source
        return LocalVersions(self.state_dir / VERSIONS_FILE, lambda: database_identity(self.client, self.tables.events))

    def drain(self, timeout: float = 120.0, *, wait_for_deliveries: bool = False) -> int:
        """Run both consumers and the due delivery jobs until nothing is left (each feeds the others).

        Jobs that are not due yet stay queued; with ``wait_for_deliveries`` the stack sleeps on its
        clock until they are (a ManualClock just moves), until no job is left."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            delivered = sum(runner.drain(timeout=deadline - time.monotonic()).records
                            for runner in self.runners.values())
            delivered += self.raise_failure_alerts()
            delivered += self.run_due_deliveries()
            total += delivered
            if delivered:
                continue
            next_job = self.delivery_queue.next_visible_at() if wait_for_deliveries else None
            if next_job is None:
                return total
            self.clock.sleep((next_job - self.clock.now()).total_seconds())
        raise TimeoutError(f"local stack still busy after {timeout:.0f}s")

    def run_due_deliveries(self) -> int:
        """Hand due jobs to the delivery worker handler in SQS-shaped batches, as Lambda's SQS event
        source mapping would; jobs it reports as failed stay queued and come back after the
        visibility timeout. Returns how many jobs were handed over."""
        return self._feed("delivery-worker", self.delivery_queue)

    def raise_failure_alerts(self) -> int:
        """Hand the on-failure records the runners sent to the stream-failures handler, which raises
        one `record_failed` alert per failed batch (a redelivered record raises nothing twice).
        Returns how many records were handed over."""
        self._report_queue_age()
        return self._feed("stream-failures", self.stream_failure_queue)

    def _report_queue_age(self) -> None:
        """SQS's metrics of the stream failure queue, once a minute: the age of its oldest message
        (the failure consumer's lag, as `dynafold status` reads it on AWS) and its visible messages
        (what the stream-failures-queued alarm watches)."""
        if self.platform_metrics is None or time.monotonic() - self._queue_age_reported < QUEUE_AGE_REPORT_SECONDS:
            return
        self._queue_age_reported = time.monotonic()
        now, queue = self.clock.now(), self.stream_failure_queue
        waiting = queue.waiting()
        sent = [parse_time(message.sent_at) for message in waiting]
        age = (now - min(sent)).total_seconds() if sent else 0.0
        visible = sum(1 for message in waiting if parse_time(message.visible_at) <= now)
        self.platform_metrics.put("AWS/SQS", "ApproximateAgeOfOldestMessage", "Seconds", max(0.0, age),
                                  {"QueueName": queue.queue_name})
        self.platform_metrics.put("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Count", visible,
                                  {"QueueName": queue.queue_name})

    def _feed(self, name: str, queue: LocalSqsQueue) -> int:
        """Lambda's SQS event source mapping, locally: batches of up to 10 due messages, each batch
        in an invocation with the function's timeout; what the handler did not report as failed is
        deleted, the rest comes back after the visibility timeout (and dead-letters after 5)."""
        handler: Handler = self._queue_handlers[name]
        timeout = timeout_from_template(QUEUE_CONSUMERS[name])
        handed = 0
        while messages := queue.receive(SQS_MAX_BATCH):
            event = {"Records": [queue.to_sqs_record(m, _REGION) for m in messages]}
            context = LambdaContext.local(f"dynafold-{name}", timeout, region=_REGION)
            try:
                response = handler(event, context) or {}
            except Exception:  # a function error (logged below): as on AWS, the whole batch comes back
                # "If your function code caused the error, ... After your queue's visibility timeout runs
                # out, the message will again reappear in the queue" - every message of the batch
                # (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
                # Raising out of here instead ended the drain, jobs left invisible (found by tests/faults).
                logger.exception("%s: invocation failed; its %d messages return after the visibility timeout",
                                 name, len(messages))
                handed += len(messages)
                continue
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
            for message in messages:
                if message.message_id not in failed and message.receipt_handle:
                    queue.delete(message.receipt_handle)
            handed += len(messages)
        return handed

    def run_forever(self, stop: threading.Event) -> list[threading.Thread]:
        threads = [threading.Thread(target=runner.run_forever, args=(stop,), name=f"runner-{name}", daemon=True)
                   for name, runner in self.runners.items()]
        threads.append(threading.Thread(target=self._watch_failures, args=(stop,), name="failures", daemon=True))
        threads.append(threading.Thread(target=self._poll_deliveries, args=(stop,), name="deliveries", daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def _watch_failures(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.raise_failure_alerts()

    def _poll_deliveries(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            try:
                self.run_due_deliveries()
            except Exception:  # the poller must outlive one bad turn; the jobs stay queued
                logger.exception("delivery poll failed")
