"""The local stack: the same handlers as on AWS, fed by the real DynamoDB Local stream.

Two stream runners (projector and reactor, as on AWS the only two readers of a shard) with the
batch settings of the template's event source mappings, checkpoints under the state directory,
and a failure destination whose entries become `record_failed` alerts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from events.alerts import AlertRaised
from events.store import EventStore
from processors import projector as projector_module
from processors import reactor as reactor_module
from processors.aws import dynamodb_client, streams_client
from processors.config import Tables
from processors.lambda_logs import LambdaLogRouter
from processors.stream_runner import StreamRunner, read_failures, settings_from_template
from projections.alert_rules import AlertSettings, alert_id
from projections.batch import BatchProjector
from projections.registry import VIEWS
from projections.view_store import ViewStore

CONSUMERS = {"projector": "ProjectorFunction", "reactor": "ReactorFunction"}
LOGGER_NAMES = ("projector", "reactor")  # the Powertools loggers (services) of the local functions


@dataclass
class LocalStack:
    endpoint_url: str
    tables: Tables
    state_dir: Path
    access_key: str | None = None
    alert_settings: AlertSettings = field(default_factory=AlertSettings)
    logs: LambdaLogRouter | None = None  # where handlers' stdout goes (else the terminal)
    storefront_url: str | None = None  # where stock broadcasts are delivered (none: no broadcasts)

    def __post_init__(self) -> None:
        self.client = dynamodb_client(self.endpoint_url, access_key=self.access_key)
        self.store = EventStore(self.client, self.tables.events, self.tables.idempotency)
        self.views = ViewStore(self.client, self.tables.views)
        self.reactor = reactor_module.Reactor(self.store, self.views, self.alert_settings, self.storefront_url)
        handlers = {
            "projector": projector_module.make_handler(
                BatchProjector(self.views, self.store.read_stream, VIEWS)),
            "reactor": reactor_module.make_handler(self.reactor),
        }
        if self.logs is not None:
            handlers = {name: self.logs.route(f"dynafold-{name}", handler) for name, handler in handlers.items()}
        streams = streams_client(self.endpoint_url, access_key=self.access_key)
        self.runners = {
            name: StreamRunner(
                streams, self.client, self.tables.events, handlers[name],
                settings_from_template(logical_id),
                checkpoint_dir=self.state_dir / "checkpoints", name=name,
            )
            for name, logical_id in CONSUMERS.items()
        }

    def drain(self, timeout: float = 120.0) -> int:
        """Run both consumers until neither has anything left (reactions feed the projector)."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            delivered = sum(runner.drain(timeout=deadline - time.monotonic()).records
                            for runner in self.runners.values())
            delivered += self.raise_failure_alerts()
            total += delivered
            if delivered == 0:
                return total
        raise TimeoutError(f"local stack still busy after {timeout:.0f}s")

    def run_forever(self, stop: threading.Event) -> list[threading.Thread]:
        threads = [threading.Thread(target=runner.run_forever, args=(stop,), name=f"runner-{name}", daemon=True)
                   for name, runner in self.runners.items()]
        threads.append(threading.Thread(target=self._watch_failures, args=(stop,), name="failures", daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def _watch_failures(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.raise_failure_alerts()

    def raise_failure_alerts(self) -> int:
        """An alert per batch the runners gave up on; alert ids derive from the batch, so re-reading
        the failure file raises nothing twice. Returns how many were new."""
        raised = 0
        for name, runner in self.runners.items():
            for failure in read_failures(runner.failure_destination):
                info = failure.get("DDBStreamBatchInfo", {})
                cause = f"{name}:{info.get('shardId')}:{info.get('startSequenceNumber')}"
                alert = AlertRaised(
                    alert_id=alert_id("record_failed", cause), alert_type="record_failed", severity="critical",
                    subject=f"consumer:{name}",
                    message=(f"{name} gave up on {info.get('batchSize')} record(s) from sequence "
                             f"{info.get('startSequenceNumber')} ({failure.get('requestContext', {}).get('condition')})"
                             f": {failure.get('error', '')}")[:1000],
                )
                if self.reactor.raise_alert(alert):
                    raised += 1
        return raised

    def state(self) -> dict[str, Any]:
        return {name: str(runner.checkpoint_path) for name, runner in self.runners.items()}
