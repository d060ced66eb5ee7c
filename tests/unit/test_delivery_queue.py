"""The delivery job queue: job validation, the local SQS stand-in (delays, visibility, redrive), SQS itself (moto)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from events.errors import DynafoldError
from processors.adapters.clock import ManualClock
from processors.adapters.dead_letters import DEAD_LETTER_QUEUE_URL_ENV, SqsDeadLetters
from processors.local.queues import LocalDeadLetters, LocalSqsQueue
from processors.adapters.delivery_queue import (
    QUEUE_URL_ENV,
    DeliveryJob,
    InvalidDeliveryJob,
    SqsDeliveryQueue,
    SqsQueue,
    sqs_delay,
)

JOB = DeliveryJob(stream="delivery:user123:msg-1", attempt=1, cause_event_id="e-1", correlation_id="req-1")


@pytest.fixture
def clock():
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))


@pytest.fixture
def queue(tmp_path, clock):
    return LocalSqsQueue(tmp_path / "jobs.json", clock, visibility_timeout=30, max_receives=2)


@pytest.mark.parametrize("body, fragment", [
    ("not json", "<body>"),
    ('{"stream": "sku:A", "attempt": 1, "cause_event_id": "e"}', "not a delivery stream"),
    ('{"stream": "delivery:a:b", "attempt": 0, "cause_event_id": "e"}', "attempt"),
    ('{"stream": "delivery:a:b", "attempt": 1}', "cause_event_id"),
    ('{"stream": "delivery:a:b", "attempt": 1, "cause_event_id": "e", "extra": 1}', "extra"),
])
def test_a_message_that_is_not_a_job_is_named_as_such(body, fragment):
    with pytest.raises(InvalidDeliveryJob, match=fragment):
        DeliveryJob.from_body(body)


def test_a_job_round_trips():
    assert DeliveryJob.from_body(JOB.to_body()) == JOB


def test_delayed_jobs_become_due_when_the_clock_reaches_them(queue, clock):
    queue.send(JOB, delay_seconds=90)
    assert queue.receive() == []
    assert queue.next_visible_at() == datetime(2026, 3, 1, 12, 1, 30, tzinfo=timezone.utc)
    clock.advance(90)
    [message] = queue.receive()
    assert DeliveryJob.from_body(message.body) == JOB


def test_a_received_job_is_hidden_until_deleted_or_its_visibility_times_out(queue, clock):
    queue.send(JOB)
    [first] = queue.receive()
    assert queue.receive() == []
    clock.advance(30)
    [again] = queue.receive()  # not deleted in time: delivered again, with a new receipt
    assert again.message_id == first.message_id and again.receives == 2
    assert not queue.delete(first.receipt_handle)  # a stale receipt deletes nothing
    assert queue.delete(again.receipt_handle)
    assert len(queue) == 0


def test_a_job_that_keeps_failing_moves_to_the_job_dead_letter_file(queue, clock):
    queue.send(JOB)
    for _ in range(2):
        assert len(queue.receive()) == 1
        clock.advance(30)
    assert queue.receive() == []
    assert len(queue) == 0
    [line] = queue.dead_letter_path.read_text().splitlines()
    assert json.loads(json.loads(line)["body"]) == json.loads(JOB.to_body())


def test_pending_jobs_survive_a_restart(tmp_path, clock):
    LocalSqsQueue(tmp_path / "jobs.json", clock).send(JOB, 5)
    reopened = LocalSqsQueue(tmp_path / "jobs.json", clock)
    clock.advance(5)
    assert [DeliveryJob.from_body(m.body) for m in reopened.receive()] == [JOB]


def test_local_jobs_are_handed_over_as_sqs_records(queue):
    queue.send(JOB)
    [message] = queue.receive()
    record = queue.to_sqs_record(message, "us-east-1")
    assert (record["eventSource"], record["body"], record["attributes"]["ApproximateReceiveCount"]) == (
        "aws:sqs", JOB.to_body(), "1")


def test_sqs_delays_are_whole_seconds_up_to_900():
    assert [sqs_delay(s) for s in (0, 0.2, 1.0, 899.5, 3600, -4)] == [0, 1, 1, 900, 900, 0]


@mock_aws
def test_sqs_queues_send_jobs_and_dead_letters():
    sqs = boto3.client("sqs", region_name="us-east-1")
    jobs = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    SqsDeliveryQueue(SqsQueue.from_env(sqs, {QUEUE_URL_ENV: jobs}, QUEUE_URL_ENV)).send(JOB, 3600)
    SqsDeadLetters(SqsQueue(sqs, dead, DEAD_LETTER_QUEUE_URL_ENV)).send({"reason": "MAX_RETRIES_EXCEEDED"})
    [letter] = sqs.receive_message(QueueUrl=dead)["Messages"]
    assert json.loads(letter["Body"]) == {"reason": "MAX_RETRIES_EXCEEDED"}
    assert sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["ApproximateNumberOfMessagesDelayed"])[
        "Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


def test_without_a_queue_url_only_sending_fails_and_says_which_setting():
    queue = SqsDeliveryQueue(SqsQueue.from_env(None, {}, QUEUE_URL_ENV))
    with pytest.raises(DynafoldError, match="DELIVERY_QUEUE_URL is not set"):
        queue.send(JOB)
    with pytest.raises(DynafoldError, match="DELIVERY_DEAD_LETTER_QUEUE_URL is not set"):
        SqsDeadLetters(SqsQueue.from_env(None, {"OTHER": "x"}, DEAD_LETTER_QUEUE_URL_ENV)).send({})


def test_local_dead_letters_are_json_lines(tmp_path):
    letters = LocalDeadLetters(tmp_path / "dlq.jsonl")
    letters.send({"delivery_stream": "delivery:a:b", "reason": "MAX_RETRIES_EXCEEDED"})
    letters.send({"delivery_stream": "delivery:a:c", "reason": "TARGET_GONE"})
    assert [m["delivery_stream"] for m in letters.read()] == ["delivery:a:b", "delivery:a:c"]
