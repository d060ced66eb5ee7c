"""The shape every record-at-a-time Lambda handler here shares: Powertools context, metrics, partial batches.

Each record is handled on its own; a record whose handler raises is reported as a batch item
failure (Lambda's partial batch response, the mappings have ReportBatchItemFailures:
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html and
services-ddb-batchfailurereporting.html), the others are done. This is what Powertools'
``BatchProcessor`` with ``raise_on_entire_batch_failure=False`` answers, built here instead because
importing ``aws_lambda_powertools.utilities.batch`` loads asyncio and every Powertools event data
class, about a fifth of these functions' cold import, for a loop of a few lines (the projector
builds its own response for the same reason: processors/handlers/projector.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

Record = Mapping[str, Any]  # one record of Lambda's SQS or DynamoDB Streams event, as Lambda sends it


class BatchItemFailure(TypedDict):
    itemIdentifier: str  # the SQS messageId, or the stream record's dynamodb.SequenceNumber


class BatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


Handler = Callable[[dict[str, Any], Any], BatchResponse]


class NotABatch(ValueError):
    """The event has no ``Records`` list: not an SQS or DynamoDB Streams invocation."""


def sqs_message_id(record: Record) -> str:
    """An SQS record's identifier in the partial batch response."""
    message_id: str = record["messageId"]
    return message_id


def stream_sequence_number(record: Record) -> str:
    """A DynamoDB Streams record's identifier in the partial batch response."""
    sequence_number: str = record["dynamodb"]["SequenceNumber"]
    return sequence_number


def partial_batch_handler(identify: Callable[[Record], str], record_handler: Callable[..., None],
                          logger: Logger, metrics: Metrics, records_metric: str) -> Handler:
    """A handler that runs ``record_handler`` per record and reports the failed ones by ``identify``,
    counting the records it was given as ``records_metric``. A ``record_handler`` with a
    ``lambda_context`` parameter is given the invocation's context."""
    wants_context = "lambda_context" in inspect.signature(record_handler).parameters

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> BatchResponse:
        metrics.add_metric(records_metric, MetricUnit.Count, len(event.get("Records", [])))
        records = event.get("Records")
        if not records or not isinstance(records, list):
            raise NotABatch("the event has no Records: expected an SQS or DynamoDB Streams batch")
        failures: list[BatchItemFailure] = []
        for record in records:
            try:
                if wants_context:
                    record_handler(record, lambda_context=context)
                else:
                    record_handler(record)
            except Exception:  # noqa: BLE001 - the record handler logged it; Lambda redelivers the record
                failures.append({"itemIdentifier": identify(record)})
        return {"batchItemFailures": failures}

    return handler
