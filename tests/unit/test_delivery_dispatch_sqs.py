"""The reactor's delivery rule as wired on AWS: jobs go to the SQS job queue from the environment (moto)."""

import time
from datetime import datetime, timedelta, timezone

import boto3
from moto import mock_aws

from events.deliveries import MessageReceived, RetryScheduled
from events.envelope import RecordedEvent
from processors.functions import delivery_worker
from processors.services.delivery_dispatch import DeliveryDispatch
from processors.wiring.aws import aws_adapters, lambda_handler
from processors.adapters.delivery_queue import DeliveryJob
from processors.local.stream_runner import LambdaContext


def recorded(data, version, event_id):
    return RecordedEvent("delivery:shop:m1", version, event_id, "t", "s", datetime.now(timezone.utc), data,
                         "req-1", None, "", "")


@mock_aws
def test_message_received_and_retry_scheduled_become_sqs_jobs(monkeypatch):
    sqs = boto3.client("sqs", region_name="us-east-1")
    jobs = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    monkeypatch.setenv("DELIVERY_QUEUE_URL", jobs)
    monkeypatch.setenv("DELIVERY_DEAD_LETTER_QUEUE_URL", sqs.create_queue(QueueName="dead")["QueueUrl"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("EVENTS_TABLE", "events")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idem")
    monkeypatch.setenv("CHECKPOINTS_TABLE", "checkpoints")
    adapters = aws_adapters()  # the reactor's delivery rule over the adapters the composition root gives it on AWS
    dispatch = DeliveryDispatch(None, adapters.delivery_queue(), adapters.dead_letters(), adapters.clock)  # no reads

    dispatch(recorded(MessageReceived(sender_id="shop", message_id="m1", target_url="https://h/x"), 1, "e-1"))
    retry_at = datetime.now(timezone.utc) + timedelta(hours=2)
    dispatch(recorded(RetryScheduled(attempt=1, next_retry_at=retry_at, delay_seconds=7200, exponential_delay=8,
                                     jitter=1), 3, "e-3"))

    [now] = sqs.receive_message(QueueUrl=jobs)["Messages"]  # the retry is delayed (SQS's 900 s at most)
    assert DeliveryJob.from_body(now["Body"]) == DeliveryJob(stream="delivery:shop:m1", attempt=1,
                                                             cause_event_id="e-1", correlation_id="req-1")
    delayed = sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


@mock_aws
def test_the_worker_entry_point_reports_a_bad_message_as_a_batch_item_failure(monkeypatch):
    for name, value in {"EVENTS_TABLE": "events", "IDEMPOTENCY_TABLE": "idem", "CHECKPOINTS_TABLE": "checkpoints", "AWS_DEFAULT_REGION": "us-east-1",
                        "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/0/jobs"}.items():
        monkeypatch.setenv(name, value)
    lambda_handler.cache_clear()
    record = {"messageId": "m-1", "receiptHandle": "r", "body": "{}", "attributes": {}, "messageAttributes": {},
              "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:0:jobs",
              "awsRegion": "us-east-1"}
    context = LambdaContext("delivery-worker", "req", "arn:aws:lambda:us-east-1:0:function:w", time.monotonic() + 60)
    try:
        assert delivery_worker.handler({"Records": [record]}, context) == {
            "batchItemFailures": [{"itemIdentifier": "m-1"}]}
    finally:
        lambda_handler.cache_clear()
