"""The reactor Lambda: the second (and last) reader of the event stream, running side-effect rules.

Every effect is an append with an idempotency key derived from its cause, so redelivered
records and re-run batches change nothing. Rebuilds read the table, not the stream, so the
reactor never runs during one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from processors.logs import make_logger
from events.alerts import AlertRaised
from events.envelope import NewEvent, RecordedEvent
from events.errors import VersionConflict
from events.items import from_item
from events.store import NO_STREAM, EventStore
from projections.alert_rules import AlertSettings, alerts_for
from projections.inventory import InventoryProjection, InventoryState
from projections.view import stream_key
from projections.view_store import ViewStore

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
SOURCE = "urn:dynafold:reactor"
logger = make_logger("reactor")
metrics = Metrics(namespace=NAMESPACE, service="reactor")


def settings_from_env(env: Any = os.environ) -> AlertSettings:
    return AlertSettings(
        low_stock_threshold=int(env.get("DYNAFOLD_LOW_STOCK_THRESHOLD", "5")),
        per_sku_thresholds={k: int(v) for k, v in json.loads(env.get("DYNAFOLD_LOW_STOCK_THRESHOLDS", "{}")).items()},
    )


class Reactor:
    def __init__(self, store: EventStore, views: ViewStore, settings: AlertSettings) -> None:
        self._store = store
        self._views = views
        self._settings = settings

    def react(self, event: RecordedEvent) -> list[AlertRaised]:
        before = after = None
        if event.stream.startswith("sku:"):
            before = self.inventory_at(event.stream, event.version - 1)
            after = InventoryProjection.apply(before, event)
        raised = alerts_for(event, self._settings, before, after)
        for alert in raised:
            self.raise_alert(alert, cause=event)
        return raised

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
        metrics.add_metric("AlertsRaised", MetricUnit.Count, 1)
        return True

    def inventory_at(self, stream: str, version: int) -> InventoryState:
        """The SKU's inventory state right after `version`: from its view row if that is not ahead,
        plus the events in between from the log (the same fold the projector uses)."""
        loaded = self._views.load(InventoryProjection, stream_key(stream))
        state, start = (loaded.state, loaded.version) if loaded.version <= version else (None, 0)
        missing = self._store.read_stream(stream, start + 1, version) if version > start else []
        return InventoryProjection.fold(stream_key(stream), missing, state)


def make_handler(reactor: Reactor) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

    def record_handler(record: DynamoDBRecord) -> None:
        event = from_item(record.raw_event["dynamodb"]["NewImage"])
        logger.append_keys(correlation_id=event.id)
        for alert in reactor.react(event):
            logger.info("alert raised", extra={"alert_type": alert.alert_type, "severity": alert.severity,
                                               "alert_id": alert.alert_id})

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric("RecordsReacted", MetricUnit.Count, len(event.get("Records", [])))
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return handler


@lru_cache(maxsize=1)
def _default_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from processors.aws import dynamodb_client
    from processors.config import Tables

    tables = Tables.from_env()
    client = dynamodb_client()
    store = EventStore(client, tables.events, tables.idempotency)
    return make_handler(Reactor(store, ViewStore(client, tables.views), settings_from_env()))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (ReactorFunction)."""
    return _default_handler()(event, context)
