"""The partial batch response of the SQS- and stream-fed handlers (processors/telemetry/lambda_batch.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from processors.telemetry.lambda_batch import NotABatch, partial_batch_handler, sqs_message_id, stream_sequence_number
from processors.telemetry.logs import make_logger

# An SQS event's record and a DynamoDB Streams event's, trimmed to what the handlers read
# (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, .../with-ddb.html "Example event").
SQS_RECORD = {"messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "body": "ok", "eventSource": "aws:sqs"}
STREAM_RECORD = {"eventName": "INSERT", "eventSource": "aws:dynamodb",
                 "dynamodb": {"SequenceNumber": "111", "Keys": {"stream": {"S": "sku:A"}}}}
CONTEXT = SimpleNamespace(function_name="f", memory_limit_in_mb=128, invoked_function_arn="arn:aws:lambda:::f",
                          aws_request_id="r-1", get_remaining_time_in_millis=lambda: 1000)


LOGGER, METRICS = make_logger("test-batch"), Metrics(namespace="test", service="test-batch")


def handler_over(record_handler: Any, identify: Any = sqs_message_id) -> Any:
    return partial_batch_handler(identify, record_handler, LOGGER, METRICS, "Records")


def test_every_record_is_handled_and_only_the_failed_ones_are_reported():
    handled: list[str] = []

    def record_handler(record: dict[str, Any]) -> None:
        handled.append(record["messageId"])
        if record["body"] == "bad":
            raise ValueError("bad body")

    records = [{**SQS_RECORD, "messageId": "m-1"}, {**SQS_RECORD, "messageId": "m-2", "body": "bad"},
               {**SQS_RECORD, "messageId": "m-3"}, {**SQS_RECORD, "messageId": "m-4", "body": "bad"}]
    response = handler_over(record_handler)({"Records": records}, CONTEXT)
    assert handled == ["m-1", "m-2", "m-3", "m-4"]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-4"}]}


def test_a_whole_failed_batch_is_reported_not_raised_and_a_stream_record_by_its_sequence_number():
    def record_handler(record: dict[str, Any]) -> None:
        raise RuntimeError("down")

    response = handler_over(record_handler, stream_sequence_number)({"Records": [STREAM_RECORD]}, CONTEXT)
    assert response == {"batchItemFailures": [{"itemIdentifier": "111"}]}


def test_a_record_handler_asking_for_the_context_gets_the_invocations():
    seen: list[Any] = []

    def record_handler(record: dict[str, Any], lambda_context: Any = None) -> None:
        seen.append(lambda_context)

    assert handler_over(record_handler)({"Records": [SQS_RECORD]}, CONTEXT) == {"batchItemFailures": []}
    assert seen == [CONTEXT]


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}])
def test_an_event_without_records_is_refused(event):
    with pytest.raises(NotABatch, match="no Records"):
        handler_over(lambda record: None)(event, CONTEXT)
