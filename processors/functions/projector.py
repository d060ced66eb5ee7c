"""The projector Lambda: the one function that folds every view from the event table's stream.

Thin: Powertools parses and reports the batch, ``projections.batch`` does the folding, this
module wires the tables and emits metrics and logs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from events.envelope import RecordedEvent
from processors.telemetry.emf import count_by
from events.items import from_item
from processors.telemetry.lambda_batch import Handler
from processors.telemetry.logs import make_logger
from processors.wiring.aws import lambda_handler
from projections.batch import BatchOutcome, BatchProjector, Entry, lag_ms

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
logger = make_logger("projector")
metrics = Metrics(namespace=NAMESPACE, service="projector")


def decode_record(record: DynamoDBRecord) -> RecordedEvent:
    """A stream record's NewImage back into the event it stores (low-level attribute values)."""
    image = record.raw_event["dynamodb"]["NewImage"]
    return from_item(image)


class StreamOrderedBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor decodes and reports; it would go on after a failed record, so the
    folding runs once over the whole decoded batch and a stream's failure holds back its later records."""

    def __init__(self, project: Callable[[list[Entry]], BatchOutcome]) -> None:
        super().__init__(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        self._project = project
        self.outcome: BatchOutcome | None = None

    def process(self) -> list[tuple]:
        entries, by_sequence = [], {}
        for raw in self.records:
            record = DynamoDBRecord(raw)
            sequence: str = raw["dynamodb"]["SequenceNumber"]  # always present on a stream record
            by_sequence[sequence] = record
            keys = raw["dynamodb"].get("Keys", {})
            stream = keys.get("stream", {}).get("S", "?")
            try:
                entries.append(Entry(sequence, stream, self.handler(record=record)))
            except Exception as error:  # noqa: BLE001 - poison: reported, never blocks other streams
                entries.append(Entry(sequence, stream, None, f"{type(error).__name__}: {error}"))
        self.outcome = self._project(entries)
        failed = set(self.outcome.failed_sequence_numbers)
        results = []
        for stream_result in self.outcome.streams:
            if stream_result.failed_from is None:
                continue
            logger.error("stream held back", extra={"stream": stream_result.stream,
                                                    "sequence_number": stream_result.failed_from,
                                                    "reason": stream_result.failure})
        for sequence, record in by_sequence.items():
            if sequence in failed:
                try:
                    raise RuntimeError(f"record {sequence} not applied")
                except RuntimeError:
                    results.append(self.failure_handler(record, sys.exc_info()))
            else:
                results.append(self.success_handler(record, None))
        return results


def emit_metrics(outcome: BatchOutcome, now: datetime) -> None:
    for (view, event_type), count in sorted(outcome.applied.items()):
        count_by("EventsProjected", "projector", {"view": view, "event_type": event_type}, count)
    metrics.add_metric("DuplicatesSkipped", MetricUnit.Count, outcome.total("duplicates"))
    metrics.add_metric("GapEventsFilled", MetricUnit.Count, outcome.total("gap_events"))
    metrics.add_metric("RowsWritten", MetricUnit.Count, outcome.total("rows_written"))
    metrics.add_metric("RecordsFailed", MetricUnit.Count, len(outcome.failed_sequence_numbers))
    for name, count in sorted(outcome.measures.items()):
        metrics.add_metric(name, MetricUnit.Count, count)
    live = [e for s in outcome.streams for e in s.live]
    if live:  # EMF allows 100 values per metric; the slowest events are the ones that matter
        for lag in sorted((lag_ms(e, now) for e in live), reverse=True)[:100]:
            metrics.add_metric("ProjectionLag", MetricUnit.Milliseconds, lag)


def make_handler(projector: BatchProjector) -> Handler:
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        processor = StreamOrderedBatchProcessor(projector.project)
        with processor(records=event.get("Records", []), handler=decode_record):
            processor.process()
        outcome = processor.outcome
        if outcome is None:  # process() always sets it: a failure here is a bug, and fails the whole batch
            raise RuntimeError("the batch processor returned without projecting the batch")
        live = [e for s in outcome.streams for e in s.live]
        if live:
            logger.set_correlation_id(live[0].id)
        emit_metrics(outcome, datetime.now(timezone.utc))
        logger.info("batch projected", extra={
            "records": len(event.get("Records", [])),
            "event_ids": [e.id for e in live][:50],
            "failed": outcome.failed_sequence_numbers,
        })
        return processor.response()

    return handler


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (ProjectorFunction): tables from the environment."""
    return lambda_handler("projector")(event, context)
