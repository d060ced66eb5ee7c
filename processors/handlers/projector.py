"""The projector Lambda: the one function that folds every view from the event table's stream.

Thin: ``projections.batch`` does the folding, this module decodes the stream records, reports the
failed ones to Lambda, and emits metrics and logs.

The partial-batch response is built here rather than by Powertools' ``BatchProcessor``: the folding
has to run once over the whole decoded batch (a stream's failure holds back its later records), so
the processor's per-record loop was overridden anyway, and importing it costs every cold start
asyncio and all of Powertools' event data classes (about a fifth of the projector's import).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from events.envelope import RecordedEvent
from processors.telemetry.emf import count_by
from events.items import from_item
from processors.telemetry.lambda_batch import BatchResponse, Handler
from processors.telemetry.logs import make_logger
from projections.batch import BatchOutcome, BatchProjector, Entry, lag_ms

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
logger = make_logger("projector")
metrics = Metrics(namespace=NAMESPACE, service="projector")


def decode_record(record: Mapping[str, Any]) -> RecordedEvent:
    """A stream record's NewImage back into the event it stores (low-level attribute values)."""
    image = record["dynamodb"]["NewImage"]
    return from_item(image)


def project_records(records: list[dict[str, Any]],
                    project: Callable[[list[Entry]], BatchOutcome]) -> tuple[BatchOutcome, BatchResponse]:
    """Decode every record, fold the whole batch once, and name the records not applied.

    An undecodable record is poison: reported with its error, it never blocks other streams."""
    entries: list[Entry] = []
    sequences: dict[str, None] = {}
    for raw in records:
        sequence: str = raw["dynamodb"]["SequenceNumber"]  # always present on a stream record
        sequences[sequence] = None  # the records' order, each sequence number once
        keys = raw["dynamodb"].get("Keys", {})
        stream = keys.get("stream", {}).get("S", "?")
        try:
            entries.append(Entry(sequence, stream, decode_record(raw), inserted=raw.get("eventName") == "INSERT"))
        except Exception as error:  # noqa: BLE001 - poison: reported, never blocks other streams
            entries.append(Entry(sequence, stream, None, f"{type(error).__name__}: {error}"))
    outcome = project(entries)
    for stream_result in outcome.streams:
        if stream_result.failed_from is None:
            continue
        logger.error("stream held back", extra={"stream": stream_result.stream,
                                                "sequence_number": stream_result.failed_from,
                                                "reason": stream_result.failure})
    failed = set(outcome.failed_sequence_numbers)
    return outcome, {"batchItemFailures": [{"itemIdentifier": s} for s in sequences if s in failed]}


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
    def handler(event: dict[str, Any], context: Any) -> BatchResponse:
        outcome, response = project_records(event.get("Records", []), projector.project)
        live = [e for s in outcome.streams for e in s.live]
        if live:
            logger.set_correlation_id(live[0].correlation_id)
        emit_metrics(outcome, datetime.now(timezone.utc))
        logger.info("batch projected", extra={
            "records": len(event.get("Records", [])),
            "event_ids": [e.id for e in live][:50],
            "correlation_ids": sorted({e.correlation_id for e in live})[:50],  # the requests the batch served
            "failed": outcome.failed_sequence_numbers,
        })
        return response

    return handler
