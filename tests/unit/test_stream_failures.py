"""The stream failure consumer: on-failure records in, one `record_failed` alert per failed batch out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from events.alerts import AlertRaised
from events.envelope import Cause, CauseRef
from processors.handlers import stream_failures as function
from processors.local.stream_runner import LambdaContext
from processors.services.stream_failures import (
    InvalidFailureRecord,
    StreamFailures,
    parse_failure_record,
)

STREAM_ARN = "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
# "Example invocation record", https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
DOCUMENTED = {
    "requestContext": {
        "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 1,
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0",
    "timestamp": "2019-11-14T00:13:49.717Z",
    "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276364",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
        "batchSize": 3,
        "streamArn": STREAM_ARN,
    },
}


def stream_record(sequence: int, stream: str, version: int, event_type: str = "dynafold.inventory.stock_adjusted.v2"):
    return {"eventID": str(sequence), "eventName": "INSERT", "dynamodb": {
        "Keys": {"stream": {"S": stream}, "version": {"N": str(version)}},
        "NewImage": {"stream": {"S": stream}, "version": {"N": str(version)}, "type": {"S": event_type},
                     "id": {"S": f"{stream}-{version}"}, "correlation_id": {"S": f"request-of-{stream}"}},
        "SequenceNumber": str(sequence), "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"}}


class Streams:
    """GetShardIterator/GetRecords over one shard's records, one record per page, or trimmed."""

    def __init__(self, records: list[dict[str, Any]], trimmed: bool = False) -> None:
        self.records, self.trimmed, self.calls = records, trimmed, []

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber):
        self.calls.append((ShardIteratorType, SequenceNumber))
        if self.trimmed:
            raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}},
                              "GetShardIterator")
        index = next(i for i, r in enumerate(self.records) if int(r["dynamodb"]["SequenceNumber"]) >= int(SequenceNumber))
        return {"ShardIterator": str(index)}

    def get_records(self, ShardIterator, Limit):
        index = int(ShardIterator)
        return {"Records": self.records[index:index + 1], "NextShardIterator": str(index + 1)}


class Alerts:
    def __init__(self) -> None:
        self.raised: dict[str, AlertRaised] = {}
        self.causes: dict[str, Cause | None] = {}

    def __call__(self, alert: AlertRaised, cause: Cause | None) -> bool:
        new = alert.alert_id not in self.raised
        self.raised.setdefault(alert.alert_id, alert)
        self.causes.setdefault(alert.alert_id, cause)
        return new


def test_parses_the_documented_record():
    batch = parse_failure_record(json.dumps(DOCUMENTED))
    assert (batch.function_name, batch.condition, batch.invocations, batch.function_error) == (
        "myfunction", "RetryAttemptsExhausted", 1, "Unhandled")
    assert (batch.shard_id, batch.start, batch.end, batch.batch_size, batch.stream_arn) == (
        "shardId-00000001573689847184-864758bb", "800000000003126276362", "800000000003126276364", 3, STREAM_ARN)


@pytest.mark.parametrize("body", ["", "[]", "{}", json.dumps({"requestContext": {}}),
                                  json.dumps({**DOCUMENTED, "DDBStreamBatchInfo": {"shardId": "s"}})])
def test_anything_else_is_refused(body):
    with pytest.raises(InvalidFailureRecord):
        parse_failure_record(body)


def test_reads_the_batch_back_and_names_its_streams_versions_and_why():
    records = [stream_record(800000000003126276361, "sku:X", 1),  # before the batch
               stream_record(800000000003126276362, "sku:A", 3), stream_record(800000000003126276363, "sku:A", 4),
               stream_record(800000000003126276364, "order:9", 1, "dynafold.orders.received.v1"),
               stream_record(800000000003126276365, "sku:Y", 1)]  # after it
    streams, alerts = Streams(records), Alerts()
    alert, found, raised = StreamFailures(streams, alerts).handle(parse_failure_record(json.dumps(DOCUMENTED)))
    assert raised and streams.calls == [("AT_SEQUENCE_NUMBER", "800000000003126276362")]
    assert dict(found.streams) == {"order:9": (1,), "sku:A": (3, 4)} and found.gone is None
    # Issue 19 §A5: the alert keeps its cause, the batch's first failed event, and that request.
    assert alerts.causes[alert.alert_id] == CauseRef("sku:A-3", "request-of-sku:A")
    assert (alert.alert_type, alert.severity, alert.subject) == ("record_failed", "critical", "consumer:myfunction")
    for part in ("myfunction", "3 record(s)", "shardId-00000001573689847184-864758bb",
                 "800000000003126276362..800000000003126276364", "RetryAttemptsExhausted after 1 invocation(s)",
                 "function error Unhandled", "order:9 v1; sku:A v3-4", "dynafold.orders.received.v1"):
        assert part in alert.message, part


def test_a_concurrent_batchs_range_is_read_to_its_end_so_no_failed_record_goes_unnamed():
    """Above ParallelizationFactor 1 a batch is a lane's records: its range (first to last sequence
    number) also holds other lanes'. A batch of 2 over 4 records: the failed last one is named."""
    record = {**DOCUMENTED, "DDBStreamBatchInfo": {**DOCUMENTED["DDBStreamBatchInfo"], "batchSize": 2,
                                                   "endSequenceNumber": "800000000003126276365"}}
    records = [stream_record(800000000003126276362, "sku:A", 3), stream_record(800000000003126276363, "sku:B", 1),
               stream_record(800000000003126276364, "sku:C", 7), stream_record(800000000003126276365, "sku:A", 4),
               stream_record(800000000003126276366, "sku:Y", 1)]  # after it
    alert, found, _ = StreamFailures(Streams(records), Alerts()).handle(parse_failure_record(json.dumps(record)))
    assert dict(found.streams) == {"sku:A": (3, 4), "sku:B": (1,), "sku:C": (7,)} and found.gone is None
    assert "sku:A v3-4" in alert.message


def test_a_redelivered_failure_message_raises_nothing_twice():
    alerts = Alerts()
    service = StreamFailures(Streams([stream_record(800000000003126276362, "sku:A", 3)]), alerts)
    body = json.dumps(DOCUMENTED)
    first, _, raised_first = service.handle(parse_failure_record(body))
    again = json.loads(body)
    again["requestContext"]["requestId"] = "another-delivery"  # the same batch, sent again
    second, _, raised_second = service.handle(parse_failure_record(json.dumps(again)))
    assert (raised_first, raised_second) == (True, False) and first.alert_id == second.alert_id
    other = json.loads(body)
    other["requestContext"]["functionArn"] = "arn:aws:lambda:us-east-2:123456789012:function:reactor"
    third, _, raised_third = service.handle(parse_failure_record(json.dumps(other)))
    assert raised_third and third.alert_id != first.alert_id  # the other reader's failure is its own


def test_records_the_stream_no_longer_holds_are_named_by_their_range():
    partial_body = {**DOCUMENTED, "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                                      "functionError": None}}
    alert, found, _ = StreamFailures(Streams([], trimmed=True), Alerts()).handle(
        parse_failure_record(json.dumps(partial_body)))
    assert found.found == 0 and "TrimmedDataAccessException" in (found.gone or "")
    assert "replay shard shardId-00000001573689847184-864758bb sequence 800000000003126276362.." in alert.message
    assert "batchItemFailures" in alert.message  # partial batch response: no function error


def test_the_handler_reports_only_unhandled_messages_as_batch_item_failures(caplog):
    handler = function.make_handler(StreamFailures(Streams([stream_record(800000000003126276362, "sku:A", 3)]),
                                                   Alerts()))
    event = {"Records": [sqs_record("m-1", json.dumps(DOCUMENTED)), sqs_record("m-2", "not json")]}
    context = LambdaContext("dynafold-stream-failures", "req", "arn:aws:lambda:us-east-1:0:function:f",
                            time.monotonic() + 30)
    assert handler(event, context) == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    [line] = [r for r in caplog.records if r.getMessage() == "stream batch failed"]
    assert line.event_streams == {"sku:A": [3]} and line.reason == "RetryAttemptsExhausted"  # type: ignore[attr-defined]


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:dynafold-stream-failures"}
