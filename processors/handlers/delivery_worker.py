"""DeliveryWorkerFunction (SQS-fed): one webhook attempt per job, its outcome recorded as an event.

Thin: decodes the job, runs ``services.delivery_worker.DeliveryWorker`` (built by the composition
root), emits metrics and one log line per job; failed jobs are batch item failures SQS retries.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from processors.adapters.delivery_queue import DeliveryJob
from processors.services.delivery_worker import DeliveryWorker, JobResult, logger, metrics
from processors.telemetry.lambda_batch import Handler, Record, partial_batch_handler, sqs_message_id


def emit_metrics(result: JobResult) -> None:
    """Dimensions stay low-cardinality (service only): never the target, sender or message."""
    if result.http is not None:
        metrics.add_metric("DeliveryAttempts", MetricUnit.Count, 1)
        metrics.add_metric("DeliveryLatency", MetricUnit.Milliseconds, result.http.response_time_ms)
    if not result.recorded or result.decision is None:  # recorded implies a decision
        return
    if result.decision.classification.success:
        metrics.add_metric("DeliveriesSucceeded", MetricUnit.Count, 1)
    else:
        metrics.add_metric("DeliveriesFailed", MetricUnit.Count, 1)
    if result.outcome == "retry_scheduled":
        metrics.add_metric("RetriesScheduled", MetricUnit.Count, 1)
    if result.outcome == "dead_lettered":
        metrics.add_metric("DeliveriesDeadLettered", MetricUnit.Count, 1)


def _log(job: DeliveryJob, result: JobResult) -> None:
    fields: dict[str, Any] = {"delivery_stream": job.stream, "attempt": job.attempt, "outcome": result.outcome}
    if result.detail:
        fields["detail"] = result.detail
    if result.decision is not None:
        fields["category"] = result.decision.classification.category
        if result.decision.backoff is not None:
            fields["retry_delay_seconds"] = result.decision.backoff.delay_seconds
    if result.http is not None:
        fields.update(status_code=result.http.status_code, response_time_ms=result.http.response_time_ms)
    if result.target_host:
        fields["target_host"] = result.target_host
    logger.info("delivery job done", extra=fields)


class NotStarted(Exception):
    """The invocation has too little time left for one more job; it goes back to the queue."""


def make_handler(worker: DeliveryWorker) -> Handler:
    budget_ms = worker.settings.job_budget_seconds * 1000

    def record_handler(record: Record, lambda_context: Any = None) -> None:
        # Jobs run one after another: one that cannot finish before the function's timeout is not
        # started, and is reported as a batch item failure, so SQS hands it out again after the
        # visibility timeout, instead of Lambda killing the invocation and the whole batch coming
        # back (and, after maxReceiveCount, landing in the DLQ without a dead-letter event).
        if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < budget_ms:
            logger.warning("delivery job not started: too little time left", extra={
                "message_id": record["messageId"],
                "remaining_ms": lambda_context.get_remaining_time_in_millis(), "job_budget_ms": budget_ms})
            metrics.add_metric("DeliveryJobsPostponed", MetricUnit.Count, 1)
            raise NotStarted(record["messageId"])
        job = None
        try:
            job = DeliveryJob.from_body(record["body"])
            logger.set_correlation_id(job.correlation_id or job.cause_event_id)  # the message's request
            logger.append_keys(cause_event_id=job.cause_event_id)
            result = worker.run(job)
        except Exception as error:
            # Reported as a batch item failure: SQS retries it, then moves it to the job DLQ.
            # Messages of dynafold's errors never carry secrets or payloads.
            logger.error("delivery job failed", extra={
                "message_id": record["messageId"], "delivery_stream": job.stream if job else None,
                "attempt": job.attempt if job else None, "error": f"{type(error).__name__}: {error}"})
            raise
        emit_metrics(result)
        _log(job, result)

    return partial_batch_handler(sqs_message_id, record_handler, logger, metrics, "DeliveryJobs")
