"""StreamFailuresFunction (SQS-fed): a `record_failed` alert per stream batch a reader gave up on.

Thin: the stream readers' on-failure destination (the stream failure queue) feeds it; each message
is parsed and handed to ``services.stream_failures.StreamFailures`` (built by the composition
root), which reads the batch back from the stream and raises the alert once. A message that
cannot be handled is a batch item failure: SQS retries it, then moves it to its dead-letter queue.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from processors.services.stream_failures import StreamFailures, logger, metrics, parse_failure_record
from processors.telemetry.lambda_batch import Handler, Record, partial_batch_handler, sqs_message_id


def make_handler(service: StreamFailures) -> Handler:
    def record_handler(record: Record) -> None:
        try:
            batch = parse_failure_record(record["body"])
            alert, found, raised = service.handle(batch)
        except Exception as error:
            logger.error("stream failure not handled", extra={
                "message_id": record["messageId"], "error": f"{type(error).__name__}: {error}"})
            raise
        logger.append_keys(correlation_id=alert.alert_id)
        if raised:
            metrics.add_metric("FailedBatchesAlerted", MetricUnit.Count, 1)
            metrics.add_metric("FailedRecords", MetricUnit.Count, batch.batch_size)
        # One line per failed batch, whether new or a redelivery: the alert says the rest.
        logger.error("stream batch failed", extra={
            "function": batch.function_name, "reason": batch.condition, "shard_id": batch.shard_id,
            "start_sequence_number": batch.start, "end_sequence_number": batch.end,
            "batch_size": batch.batch_size, "invocations": batch.invocations,
            "function_error": batch.function_error, "records_found": found.found,
            "event_streams": {stream: list(v) for stream, v in found.streams.items()},
            "alert_id": alert.alert_id, "alert_new": raised})

    return partial_batch_handler(sqs_message_id, record_handler, logger, metrics, "StreamFailureMessages")
