"""The shape every record-at-a-time Lambda handler here shares: Powertools context, metrics, partial batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

Handler = Callable[[dict[str, Any], Any], PartialItemFailureResponse]


def partial_batch_handler(processor: BasePartialBatchProcessor, record_handler: Callable[[Any], None],
                          logger: Logger, metrics: Metrics, records_metric: str) -> Handler:
    """A handler that runs ``record_handler`` per record and reports failed records (batchItemFailures),
    counting the records it was given as ``records_metric``."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        metrics.add_metric(records_metric, MetricUnit.Count, len(event.get("Records", [])))
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return handler
