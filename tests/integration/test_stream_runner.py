"""The local event source mapping against DynamoDB Local's real stream (and a scripted stream for
what the engine cannot be made to do on demand: shard splits, expired iterators, old records)."""

from __future__ import annotations

from processors.operations.template import load_template

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from events.envelope import NewEvent
from events.store import NO_STREAM
from processors.local.stream_runner import (
    StreamRunner,
    StreamSettings,
    lane_of,
    read_failures,
    sequence_number,
    settings_from_template,
    timeout_from_template,
    to_lambda_record,
)
from processors.operations.template import Tag

LAMBDA_RECORD_KEYS = {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}
STREAM_RECORD_KEYS = {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes", "StreamViewType"}


def adjust(sku: str, delta: int) -> NewEvent:
    return NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": delta, "reason": "order"})


def append_events(local_dynamo, plan: list[tuple[str, int]]) -> list[str]:
    """Append `count` events to each sku stream (one transaction per step); the event ids in write order."""
    store = local_dynamo.store()
    versions: dict[str, int] = {}
    ids: list[str] = []
    for sku, count in plan:
        stream = f"sku:{sku}"
        expected = versions.get(stream, NO_STREAM)
        result = store.append(stream, [adjust(sku, i + 1) for i in range(count)], expected)
        versions[stream] = versions.get(stream, 0) + count
        ids.extend(result.event_ids)
    return ids


class Recorder:
    """A handler that records every batch it is given and answers through `decide(batch)`."""

    def __init__(self, decide=None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.contexts: list[Any] = []
        self.decide = decide or (lambda batch: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any] | None:
        json.dumps(event)  # Lambda hands over JSON: the event must be plain JSON data
        self.batches.append(event["Records"])
        self.contexts.append(context)
        return self.decide(event["Records"])

    @property
    def event_ids(self) -> list[str]:
        return [r["dynamodb"]["NewImage"]["id"]["S"] for batch in self.batches for r in batch]


def make_runner(local_dynamo, handler, tmp_path: Path, name: str = "projector", **settings: Any) -> StreamRunner:
    return StreamRunner(local_dynamo.streams(), local_dynamo.client, local_dynamo.names.events, handler,
                        StreamSettings(**settings), tmp_path, name)


def event_id(record: dict[str, Any]) -> str:
    return record["dynamodb"]["NewImage"]["id"]["S"]


# --- the real stream --------------------------------------------------------------------------


def test_delivers_every_event_in_order_in_lambdas_shape(local_dynamo, tmp_path):
    ids = append_events(local_dynamo, [("A", 3), ("B", 2), ("A", 2), ("C", 4), ("B", 1)])
    handler = Recorder()
    summary = make_runner(local_dynamo, handler, tmp_path, batch_size=4).drain()

    assert handler.event_ids == ids
    assert summary.records == len(ids) and summary.failed_batches == 0
    assert all(1 <= len(batch) <= 4 for batch in handler.batches)
    assert [len(batch) for batch in handler.batches] == [4, 4, 4]
    for stream in ("sku:A", "sku:B", "sku:C"):
        versions = [int(r["dynamodb"]["Keys"]["version"]["N"]) for b in handler.batches for r in b
                    if r["dynamodb"]["Keys"]["stream"]["S"] == stream]
        assert versions == sorted(versions) == list(range(1, len(versions) + 1))

    arn = local_dynamo.client.describe_table(TableName=local_dynamo.names.events)["Table"]["LatestStreamArn"]
    record = handler.batches[0][0]
    assert set(record) == LAMBDA_RECORD_KEYS
    assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
    assert record["eventVersion"] == "1.1" and record["eventSourceARN"] == arn
    assert record["awsRegion"] == local_dynamo.client.meta.region_name
    assert set(record["dynamodb"]) == STREAM_RECORD_KEYS
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int | float)
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert record["dynamodb"]["Keys"] == {"stream": {"S": "sku:A"}, "version": {"N": "1"}}
    image = record["dynamodb"]["NewImage"]
    assert image["type"] == {"S": "dynafold.inventory.stock_adjusted.v2"} and image["id"] == {"S": ids[0]}
    assert json.loads(image["data"]["S"])["delta"] == 1
    sequences = [int(sequence_number(r)) for b in handler.batches for r in b]
    assert sequences == sorted(sequences)

    context = handler.contexts[0]
    assert context.function_name == "dynafold-projector"
    assert context.aws_request_id != handler.contexts[1].aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 60_000


def test_to_lambda_record_from_raw_get_records_output(local_dynamo):
    append_events(local_dynamo, [("A", 1)])
    streams = local_dynamo.streams()
    arn = local_dynamo.client.describe_table(TableName=local_dynamo.names.events)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    raw = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"][0]
    assert isinstance(raw["dynamodb"]["ApproximateCreationDateTime"], datetime)  # boto3's parse

    record = to_lambda_record(raw, arn, "eu-west-1")
    assert record["awsRegion"] == "eu-west-1" and record["eventSourceARN"] == arn
    assert record["dynamodb"]["ApproximateCreationDateTime"] == int(
        raw["dynamodb"]["ApproximateCreationDateTime"].timestamp())
    assert record["dynamodb"]["NewImage"] == raw["dynamodb"]["NewImage"]
    assert json.loads(json.dumps(record)) == record


def test_partial_failure_redelivers_from_the_failed_record(local_dynamo, tmp_path):
    ids = append_events(local_dynamo, [("A", 3), ("B", 3), ("A", 3), ("B", 1)])  # 10 events
    target, failed_once = ids[5], []

    def decide(batch):
        for record in batch:
            if event_id(record) == target and not failed_once:
                failed_once.append(True)
                return {"batchItemFailures": [{"itemIdentifier": sequence_number(record)}]}
        return {"batchItemFailures": []}

    handler = Recorder(decide)
    summary = make_runner(local_dynamo, handler, tmp_path, batch_size=4).drain()

    batches = [[event_id(r) for r in batch] for batch in handler.batches]
    assert batches == [ids[0:4], ids[4:8], ids[5:9], ids[9:10]]
    assert summary.failed_batches == 1 and summary.discarded_records == 0
    assert not read_failures(tmp_path / "projector-failures.jsonl")


def test_handler_exception_retries_the_whole_batch(local_dynamo, tmp_path):
    ids = append_events(local_dynamo, [("A", 3), ("B", 2)])
    calls = []

    def decide(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("table throttled")
        return None

    handler = Recorder(decide)
    make_runner(local_dynamo, handler, tmp_path, batch_size=10).drain()
    assert [[event_id(r) for r in b] for b in handler.batches] == [ids, ids]


def test_poison_record_goes_to_the_failure_destination_after_the_retries(local_dynamo, tmp_path):
    ids = append_events(local_dynamo, [("A", 3), ("B", 3), ("A", 3), ("C", 3)])  # 12 events
    poison = ids[2]

    def decide(batch):
        bad = [sequence_number(r) for r in batch if event_id(r) == poison]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in bad]}

    handler = Recorder(decide)
    runner = make_runner(local_dynamo, handler, tmp_path, batch_size=4, maximum_retry_attempts=2)
    summary = runner.drain()

    batches = [[event_id(r) for r in batch] for batch in handler.batches]
    # first attempt + 2 retries of the batch starting at the poison record, then the shard moves on
    assert batches == [ids[0:4], ids[2:6], ids[2:6], ids[6:10], ids[10:12]]
    assert summary.discarded_records == 4
    assert set(handler.event_ids) == set(ids)
    (line,) = read_failures(runner.failure_destination)
    assert runner.failure_destination == tmp_path / "projector-failures.jsonl"
    info = line["DDBStreamBatchInfo"]
    assert line["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert line["requestContext"]["approximateInvokeCount"] == 3
    assert info["startSequenceNumber"] == sequence_number(handler.batches[1][0])
    assert info["endSequenceNumber"] == sequence_number(handler.batches[1][-1])
    assert info["batchSize"] == 4 and info["streamArn"] == runner.stream_arn
    assert info["shardId"].startswith("shardId-") and info["approximateArrivalOfFirstRecord"].endswith("Z")

    later = append_events_after(local_dynamo, "D", 2)
    make_runner(local_dynamo, handler, tmp_path, batch_size=4, maximum_retry_attempts=2).drain()
    assert [event_id(r) for r in handler.batches[-1]] == later  # the checkpoint is past the poison


def append_events_after(local_dynamo, sku: str, count: int) -> list[str]:
    return list(local_dynamo.store().append(f"sku:{sku}", [adjust(sku, 1)] * count, NO_STREAM).event_ids)


def test_bisect_isolates_a_record_that_makes_the_handler_raise(local_dynamo, tmp_path):
    ids = append_events(local_dynamo, [("A", 4), ("B", 4)])
    poison = ids[5]

    def decide(batch):
        if any(event_id(r) == poison for r in batch):
            raise ValueError("cannot fold")
        return None

    handler = Recorder(decide)
    runner = make_runner(local_dynamo, handler, tmp_path, batch_size=8, maximum_retry_attempts=1,
                         bisect_batch_on_function_error=True)
    summary = runner.drain()

    sizes = [len(b) for b in handler.batches]
    # halves until the poison is alone; only then do failures use the retry quota (1 retry)
    assert sizes == [8, 4, 4, 2, 1, 1, 1, 2]
    assert [event_id(r) for r in handler.batches[-1]] == ids[6:8]
    assert summary.discarded_records == 1
    (line,) = read_failures(runner.failure_destination)
    assert line["DDBStreamBatchInfo"]["batchSize"] == 1
    assert line["responseContext"]["functionError"] == "Unhandled"  # the handler raised
    assert line["requestContext"]["approximateInvokeCount"] == 2
    delivered_ok = {event_id(r) for b in handler.batches for r in b if poison not in map(event_id, b)}
    assert delivered_ok == set(ids) - {poison}


def test_a_new_runner_resumes_from_the_checkpoint(local_dynamo, tmp_path):
    first = append_events(local_dynamo, [("A", 3), ("B", 2)])
    handler = Recorder()
    make_runner(local_dynamo, handler, tmp_path, batch_size=2).drain()
    assert handler.event_ids == first

    second = append_events_after(local_dynamo, "C", 3) + append_events_after(local_dynamo, "D", 2)
    resumed = Recorder()
    make_runner(local_dynamo, resumed, tmp_path, batch_size=2).drain()
    assert resumed.event_ids == second

    saved = json.loads((tmp_path / "projector-checkpoint.json").read_text())
    (position,) = saved["shards"].values()
    assert position == sequence_number(resumed.batches[-1][-1])


def test_consumers_keep_separate_checkpoints(local_dynamo, tmp_path):
    ids = append_events(local_dynamo, [("A", 2), ("B", 2)])
    projector, reactor = Recorder(), Recorder()
    make_runner(local_dynamo, projector, tmp_path, name="projector").drain()
    make_runner(local_dynamo, reactor, tmp_path, name="reactor").drain()
    assert projector.event_ids == reactor.event_ids == ids


def test_latest_starts_after_what_is_already_in_the_stream(local_dynamo, tmp_path):
    append_events(local_dynamo, [("A", 3)])
    handler = Recorder()
    runner = make_runner(local_dynamo, handler, tmp_path, starting_position="LATEST")
    assert runner.run_once().records == 0
    later = append_events_after(local_dynamo, "B", 2)
    runner.drain()
    assert handler.event_ids == later


# --- settings from the template -----------------------------------------------------------------


def sam_template(**stream_properties: Any) -> dict[str, Any]:
    return {
        "Parameters": {"ProjectorBatchSize": {"Type": "Number", "Default": 50}},
        "Resources": {
            "EventsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "ProjectorFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "processors.functions.projector.handler",
                    "Events": {
                        "Api": {"Type": "Api", "Properties": {"Path": "/x", "Method": "get"}},
                        "Stream": {"Type": "DynamoDB", "Properties": {
                            "Stream": Tag("GetAtt", "EventsTable.StreamArn"), **stream_properties}},
                    },
                },
            },
        },
    }


def test_settings_from_template_maps_the_event_source_mapping():
    template = sam_template(
        BatchSize=Tag("Ref", "ProjectorBatchSize"),
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=5,
        BisectBatchOnFunctionError=True,
        StartingPosition="LATEST",
        MaximumRecordAgeInSeconds=3600,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    assert settings_from_template("ProjectorFunction", template) == StreamSettings(
        batch_size=50, batching_window_seconds=1.0, maximum_retry_attempts=5,
        bisect_batch_on_function_error=True, starting_position="LATEST",
        maximum_record_age_seconds=3600, report_batch_item_failures=True)
    factor = sam_template(ParallelizationFactor=Tag("Ref", "ProjectorBatchSize"))  # any parameter's default
    factor["Parameters"]["ProjectorBatchSize"]["Default"] = 4
    assert settings_from_template("ProjectorFunction", factor).parallelization_factor == 4


@pytest.mark.parametrize("factor", [0, 11])
def test_parallelization_factor_refuses_what_lambda_refuses(factor):
    with pytest.raises(ValueError, match="parallelization_factor"):
        StreamSettings(parallelization_factor=factor)


def test_settings_from_template_defaults_and_refusals():
    defaults = settings_from_template("ProjectorFunction", sam_template(StartingPosition="TRIM_HORIZON",
                                                                        MaximumRecordAgeInSeconds=-1))
    assert defaults == StreamSettings(report_batch_item_failures=False)
    with pytest.raises(ValueError, match="maximum_retry_attempts"):
        settings_from_template("ProjectorFunction", sam_template(MaximumRetryAttempts=-2))
    with pytest.raises(KeyError):
        settings_from_template("EventsTable", sam_template())
    with pytest.raises(ValueError, match="cannot be resolved"):
        settings_from_template("ProjectorFunction", sam_template(BatchSize=Tag("Ref", "Nowhere")))


# --- a scripted stream: shard lineage, expired iterators, trimmed data, old records ---------------


class ScriptedStreams:
    """Just enough of the dynamodbstreams API, with shards, closure and iterator expiry under test control."""

    ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"

    def __init__(self, shards: list[dict[str, Any]], page_size: int = 1) -> None:
        self.shards = shards  # {"id", "parent", "closed", "records": [raw records]}
        self.page_size = page_size
        self.expire_next = 0
        self.trimmed_before: dict[str, int] = {}
        self.calls: list[str] = []

    def describe_stream(self, StreamArn, ExclusiveStartShardId=None):
        start = 0 if ExclusiveStartShardId is None else [s["id"] for s in self.shards].index(ExclusiveStartShardId) + 1
        page = self.shards[start:start + self.page_size]
        description = {"StreamArn": StreamArn, "Shards": [self._describe(s) for s in page]}
        if start + self.page_size < len(self.shards):
            description["LastEvaluatedShardId"] = page[-1]["id"]
        return {"StreamDescription": description}

    def _describe(self, shard):
        described = {"ShardId": shard["id"], "SequenceNumberRange": {"StartingSequenceNumber": "1" * 21}}
        if shard.get("parent"):
            described["ParentShardId"] = shard["parent"]
        if shard.get("closed"):
            described["SequenceNumberRange"]["EndingSequenceNumber"] = "9" * 21
        return described

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber=None):
        shard = self._shard(ShardId)
        self.calls.append(f"iterator {ShardId} {ShardIteratorType}")
        index = 0
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            index = 1 + [int(r["dynamodb"]["SequenceNumber"]) for r in shard["records"]].index(int(SequenceNumber))
            if index <= self.trimmed_before.get(ShardId, 0):
                raise _client_error("TrimmedDataAccessException")
        index = max(index, self.trimmed_before.get(ShardId, 0))
        return {"ShardIterator": f"{ShardId}|{index}"}

    def get_records(self, ShardIterator, Limit=1000):
        shard_id, index = ShardIterator.split("|")
        if self.expire_next:
            self.expire_next -= 1
            raise _client_error("ExpiredIteratorException")
        shard, start = self._shard(shard_id), int(index)
        records = shard["records"][start:start + Limit]
        self.calls.append(f"records {shard_id} {len(records)}")
        response: dict[str, Any] = {"Records": records}
        if not (shard.get("closed") and start + len(records) >= len(shard["records"])):
            response["NextShardIterator"] = f"{shard_id}|{start + len(records)}"
        return response

    def _shard(self, shard_id):
        return next(s for s in self.shards if s["id"] == shard_id)


class ScriptedTable:
    class meta:  # noqa: N801 - mirrors boto3's client.meta
        region_name = "us-east-1"

    def describe_table(self, TableName):
        return {"Table": {"TableName": TableName, "LatestStreamArn": ScriptedStreams.ARN}}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "GetRecords")


def raw_record(sequence: int, key: str, created: datetime | None = None) -> dict[str, Any]:
    return {
        "eventID": f"e{sequence}", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": created or datetime.now(timezone.utc),
            "Keys": {"stream": {"S": key}}, "NewImage": {"stream": {"S": key}, "id": {"S": f"id{sequence}"}},
            "SequenceNumber": f"{sequence:021d}", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE",
        },
    }


def scripted_runner(streams, handler, tmp_path, **settings) -> StreamRunner:
    return StreamRunner(streams, ScriptedTable(), "t", handler, StreamSettings(**settings), tmp_path, "projector")


def test_children_wait_for_their_parent_shard_to_finish(tmp_path):
    # listed child first, across describe_stream pages: the parent must still go first
    streams = ScriptedStreams([
        {"id": "child-b", "parent": "parent", "records": [raw_record(30, "k2"), raw_record(31, "k1")]},
        {"id": "parent", "closed": True, "records": [raw_record(1, "k1"), raw_record(2, "k2")]},
        {"id": "child-a", "parent": "parent", "records": [raw_record(20, "k1")]},
    ])
    handler = Recorder()
    runner = scripted_runner(streams, handler, tmp_path, batch_size=10)
    runner.drain()
    order = [sequence_number(r)[-2:] for b in handler.batches for r in b]
    assert order[:2] == ["01", "02"] and sorted(order[2:]) == ["20", "30", "31"]
    assert all(len({r["eventSourceARN"] for r in b}) == 1 for b in handler.batches)
    saved = json.loads((tmp_path / "projector-checkpoint.json").read_text())
    assert saved["finished"] == ["parent"]

    streams.shards[0]["records"].append(raw_record(32, "k1"))
    again = Recorder()
    scripted_runner(streams, again, tmp_path, batch_size=10).drain()
    assert [sequence_number(r)[-2:] for b in again.batches for r in b] == ["32"]


def test_expired_iterators_are_reacquired_after_the_checkpoint(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(i, "k") for i in range(1, 6)]}])
    handler = Recorder()
    runner = scripted_runner(streams, handler, tmp_path, batch_size=2)
    runner.run_once()
    streams.shards[0]["records"] += [raw_record(6, "k"), raw_record(7, "k")]
    streams.expire_next = 1
    runner.run_once()
    assert [sequence_number(r)[-1] for b in handler.batches for r in b] == list("1234567")
    assert streams.calls.count("iterator s AFTER_SEQUENCE_NUMBER") == 1


def test_stale_iterators_are_renewed_before_they_expire(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(1, "k")]}])
    handler = Recorder()
    runner = StreamRunner(streams, ScriptedTable(), "t", handler, StreamSettings(), tmp_path, "projector",
                          iterator_refresh_seconds=0)
    runner.run_once()
    streams.shards[0]["records"].append(raw_record(2, "k"))
    runner.run_once()
    assert [sequence_number(r)[-1] for b in handler.batches for r in b] == ["1", "2"]
    assert "iterator s AFTER_SEQUENCE_NUMBER" in streams.calls


def test_trimmed_checkpoint_continues_at_the_trim_horizon(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(i, "k") for i in range(1, 3)]}])
    handler = Recorder()
    scripted_runner(streams, handler, tmp_path).drain()
    streams.shards[0]["records"] += [raw_record(i, "k") for i in range(3, 7)]
    streams.trimmed_before["s"] = 4  # records 1..4 aged out while the runner was stopped
    scripted_runner(streams, handler, tmp_path).drain()
    assert [sequence_number(r)[-1] for b in handler.batches for r in b] == ["1", "2", "5", "6"]


def test_records_older_than_the_maximum_age_are_discarded(tmp_path):
    old = datetime(2026, 1, 1, tzinfo=timezone.utc)
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(1, "k", old), raw_record(2, "k", old),
                                                       raw_record(3, "k")]}])
    handler = Recorder()
    runner = scripted_runner(streams, handler, tmp_path, maximum_record_age_seconds=60)
    assert runner.drain().discarded_records == 2
    assert [sequence_number(r)[-1] for b in handler.batches for r in b] == ["3"]
    (line,) = read_failures(runner.failure_destination)
    assert line["requestContext"]["condition"] == "RecordAgeExceeded"
    assert line["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] == "2026-01-01T00:00:00Z"


def test_invalid_item_identifiers_fail_the_whole_batch(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(1, "k"), raw_record(2, "k")]}])
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "nope"}]}, {"batchItemFailures": []}])
    handler = Recorder(lambda batch: next(answers))
    summary = scripted_runner(streams, handler, tmp_path).drain()
    assert [len(b) for b in handler.batches] == [2, 2] and summary.failed_batches == 1


def test_run_forever_delivers_while_events_arrive_and_stops_on_request(local_dynamo, tmp_path):
    handler = Recorder()
    runner = make_runner(local_dynamo, handler, tmp_path, batching_window_seconds=0.1)
    stop = threading.Event()
    poller = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    poller.start()
    try:
        ids = append_events(local_dynamo, [("A", 2), ("B", 1)])
        deadline = time.monotonic() + 10
        while len(handler.event_ids) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join(timeout=5)
    assert not poller.is_alive()
    assert handler.event_ids == ids


# --- contract: the event source mapping's documented values and on-failure record ----------------
# Parameter ranges and defaults: "Lambda parameters for DynamoDB event source mappings",
# https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html. The record: "Example
# invocation record", https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html.
ON_FAILURE_KEYS = {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
REQUEST_CONTEXT_KEYS = {"requestId", "functionArn", "condition", "approximateInvokeCount"}
RESPONSE_CONTEXT_KEYS = {"statusCode", "executedVersion", "functionError"}
BATCH_INFO_KEYS = {"shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                   "approximateArrivalOfLastRecord", "batchSize", "streamArn"}


def test_documented_defaults_when_the_template_sets_nothing():
    settings = settings_from_template("ProjectorFunction", sam_template(StartingPosition="TRIM_HORIZON"))
    assert (settings.batch_size, settings.batching_window_seconds, settings.maximum_retry_attempts,
            settings.maximum_record_age_seconds, settings.bisect_batch_on_function_error) == (100, 0, -1, None, False)


@pytest.mark.parametrize("age", [-1, 60, 3600, 604_800])
def test_maximum_record_age_accepts_the_documented_values(age):
    settings = settings_from_template("ProjectorFunction", sam_template(MaximumRecordAgeInSeconds=age))
    assert settings.maximum_record_age_seconds == (None if age == -1 else age)


@pytest.mark.parametrize("age", [-2, 0, 1, 59, 604_801])
def test_maximum_record_age_refuses_what_lambda_refuses(age):
    with pytest.raises(ValueError, match="maximum_record_age_seconds"):
        settings_from_template("ProjectorFunction", sam_template(MaximumRecordAgeInSeconds=age))


@pytest.mark.parametrize("retries", [-1, 0, 5, 10_000])
def test_maximum_retry_attempts_accepts_the_documented_values(retries):
    settings = settings_from_template("ProjectorFunction", sam_template(MaximumRetryAttempts=retries))
    assert settings.maximum_retry_attempts == retries


@pytest.mark.parametrize("retries", [-2, 10_001])
def test_maximum_retry_attempts_refuses_what_lambda_refuses(retries):
    with pytest.raises(ValueError, match="maximum_retry_attempts"):
        StreamSettings(maximum_retry_attempts=retries)


def test_infinite_retries_keep_retrying_the_failed_record(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(1, "k"), raw_record(2, "k")]}])
    answers = iter([ValueError("a"), ValueError("b"), ValueError("c"), ValueError("d"), None])

    def decide(batch):
        answer = next(answers)
        if answer is not None:
            raise answer

    handler = Recorder(decide)
    runner = scripted_runner(streams, handler, tmp_path)  # MaximumRetryAttempts -1: the default
    summary = runner.drain()
    assert len(handler.batches) == 5 and summary.discarded_records == 0
    assert not read_failures(runner.failure_destination)


class SteppingClock:
    """A monotonic clock the handler moves: how long an invocation 'took' without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_handler_past_its_timeout_is_a_function_error_retried_and_bisected(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(i, "k") for i in range(1, 5)]}])
    clock = SteppingClock()
    remaining: list[int] = []

    def decide(batch):
        remaining.append(handler.contexts[-1].get_remaining_time_in_millis())
        if any(sequence_number(r).endswith("3") for r in batch):
            clock.now += 31  # ran past the 30 s timeout, then answered "all fine"
        return {"batchItemFailures": []}

    handler = Recorder(decide)
    runner = StreamRunner(streams, ScriptedTable(), "t", handler,
                          StreamSettings(batch_size=4, maximum_retry_attempts=1, bisect_batch_on_function_error=True),
                          tmp_path, "projector", timeout_seconds=30, monotonic=clock)
    summary = runner.drain()
    assert remaining[0] == 30_000  # the context counts down from the function's timeout
    assert [[sequence_number(r)[-1] for r in b] for b in handler.batches] == [
        ["1", "2", "3", "4"], ["1", "2"], ["3", "4"], ["3"], ["3"], ["4"]]
    assert summary.discarded_records == 1
    (line,) = read_failures(runner.failure_destination)
    assert line["responseContext"]["functionError"] == "Unhandled"
    assert line["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_timeout_comes_from_the_function_or_the_globals():
    template = sam_template()
    assert timeout_from_template("ProjectorFunction", template) == 3.0  # Lambda's default
    template["Globals"] = {"Function": {"Timeout": 60}}
    assert timeout_from_template("ProjectorFunction", template) == 60.0
    template["Resources"]["ProjectorFunction"]["Properties"]["Timeout"] = 30
    assert timeout_from_template("ProjectorFunction", template) == 30.0
    real = load_template()["Resources"]["DeliveryWorkerFunction"]["Properties"]["Timeout"]
    assert timeout_from_template("DeliveryWorkerFunction") == float(real)  # the real template


def assert_documented_record(line: dict[str, Any]) -> None:
    from aws_lambda_powertools.utilities.parser.models.dynamodb import DynamoDBStreamLambdaOnFailureDestinationModel

    assert set(line) == ON_FAILURE_KEYS
    assert set(line["requestContext"]) == REQUEST_CONTEXT_KEYS
    assert set(line["responseContext"]) == RESPONSE_CONTEXT_KEYS
    assert set(line["DDBStreamBatchInfo"]) == BATCH_INFO_KEYS
    assert line["version"] == "1.0"
    # Powertools' model of the same documented record, an independent reading of the page.
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(line)


def test_partial_batch_failure_record_has_the_documented_shape_without_a_function_error(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(1, "k"), raw_record(2, "k")]}])

    def decide(batch):
        return {"batchItemFailures": [{"itemIdentifier": sequence_number(batch[-1])}]}

    runner = scripted_runner(streams, Recorder(decide), tmp_path, maximum_retry_attempts=0)
    runner.drain()
    (line,) = read_failures(runner.failure_destination)
    assert_documented_record(line)
    assert line["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None}
    assert line["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:dynafold-projector"
    assert line["DDBStreamBatchInfo"]["batchSize"] == 1


def test_function_error_record_has_the_documented_shape(tmp_path):
    streams = ScriptedStreams([{"id": "s", "records": [raw_record(1, "k")]}])

    def decide(batch):
        raise RuntimeError("boom")

    runner = scripted_runner(streams, Recorder(decide), tmp_path, maximum_retry_attempts=0)
    runner.drain()
    (line,) = read_failures(runner.failure_destination)
    assert_documented_record(line)
    assert line["responseContext"]["functionError"] == "Unhandled"
    assert line["requestContext"]["approximateInvokeCount"] == 1


# --- ParallelizationFactor above 1: item order and nothing more ------------------------------------


def item_record(sequence: int, stream: str, version: int) -> dict[str, Any]:
    """A raw record of the item (stream, version), as the event table's stream carries it."""
    record = raw_record(sequence, stream)
    record["dynamodb"]["Keys"] = {"stream": {"S": stream}, "version": {"N": str(version)}}
    return record


def item_of(record: dict[str, Any]) -> tuple[str, str]:
    keys = record["dynamodb"]["Keys"]
    return keys["stream"]["S"], keys.get("version", {}).get("N", "")


def test_concurrent_batches_keep_each_items_order_and_promise_nothing_more(tmp_path):
    # Three streams; each item written twice (an item's second record must follow its first).
    records, sequence = [], 0
    for _ in range(2):
        for version in range(1, 7):
            for stream in ("s:a", "s:b", "s:c"):
                sequence += 1
                records.append(item_record(sequence, stream, version))
    streams = ScriptedStreams([{"id": "s", "records": records}], page_size=1)
    handler = Recorder()
    scripted_runner(streams, handler, tmp_path, batch_size=3, parallelization_factor=3).drain()

    delivered = [r for batch in handler.batches for r in batch]
    assert sorted(sequence_number(r) for r in delivered) == sorted(sequence_number(r) for r in records)
    assert all(len({lane_of(r, 3) for r in batch}) == 1 for batch in handler.batches)  # one lane each
    by_item: dict[tuple[str, str], list[int]] = {}
    for record in delivered:
        by_item.setdefault(item_of(record), []).append(int(sequence_number(record)))
    assert all(seen == sorted(seen) for seen in by_item.values())  # the promise: per item
    order = [int(sequence_number(r)) for r in delivered]
    assert order != sorted(order)  # and no more: other items' records overtake each other
    versions = [int(item_of(r)[1]) for r in delivered if item_of(r)[0] == "s:a"][:6]
    assert versions != sorted(versions)  # a stream's events too: each event is its own item
    saved = json.loads((tmp_path / "projector-checkpoint.json").read_text())
    assert saved["shards"]["s"] == sequence_number(records[-1])


class Crash(BaseException):
    """The runner's process dying mid-invocation (not an error the mapping would retry)."""


def test_a_retrying_lane_holds_the_checkpoint_back_and_a_restart_redelivers_past_it(tmp_path):
    records = [item_record(n, f"s:{n % 4}", n) for n in range(1, 25)]
    poison = records[4]  # failing: its lane retries it while the other lanes move on
    streams = ScriptedStreams([{"id": "s", "records": records}], page_size=24)
    seen_checkpoints: list[str | None] = []
    calls = {"poison": 0}

    def decide(batch):
        if sequence_number(poison) in {sequence_number(r) for r in batch}:
            calls["poison"] += 1
            saved = json.loads((tmp_path / "projector-checkpoint.json").read_text())
            seen_checkpoints.append(saved["shards"].get("s"))
            if calls["poison"] == 3:
                raise Crash()
            if calls["poison"] < 10:
                return {"batchItemFailures": [{"itemIdentifier": sequence_number(poison)}]}
        return {"batchItemFailures": []}

    first = Recorder(decide)
    with pytest.raises(Crash):
        scripted_runner(streams, first, tmp_path, batch_size=2, parallelization_factor=2,
                        maximum_retry_attempts=10).drain()
    delivered_before = {sequence_number(r) for batch in first.batches[:-1] for r in batch
                        if sequence_number(poison) not in {sequence_number(one) for one in batch}}
    assert any(int(s) > int(sequence_number(poison)) for s in delivered_before)  # other lane moved on
    assert all(c is None or int(c) < int(sequence_number(poison)) for c in seen_checkpoints)  # held back

    calls["poison"] = 10  # the restarted mapping: the poison now succeeds
    again = Recorder(decide)
    scripted_runner(streams, again, tmp_path, batch_size=2, parallelization_factor=2).drain()
    redelivered = {sequence_number(r) for batch in again.batches for r in batch}
    assert sequence_number(poison) in redelivered
    assert redelivered & delivered_before  # records past the checkpoint come again, as after a restart
    seen_first = {sequence_number(r) for batch in first.batches for r in batch}
    assert {sequence_number(r) for r in records} == redelivered | seen_first  # nothing skipped


def test_a_lane_gives_up_on_its_poison_record_alone(tmp_path):
    records = [item_record(n, f"s:{n % 3}", n) for n in range(1, 13)]
    poison = records[3]
    streams = ScriptedStreams([{"id": "s", "records": records}], page_size=12)

    def decide(batch):
        failed = [{"itemIdentifier": sequence_number(r)} for r in batch if sequence_number(r) == sequence_number(poison)]
        return {"batchItemFailures": failed}

    handler = Recorder(decide)
    runner = scripted_runner(streams, handler, tmp_path, batch_size=2, parallelization_factor=3,
                             maximum_retry_attempts=1)
    summary = runner.drain()
    delivered = {sequence_number(r) for batch in handler.batches for r in batch}
    assert delivered == {sequence_number(r) for r in records}
    (line,) = read_failures(runner.failure_destination)
    info = line["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == sequence_number(poison) and summary.discarded_records == info["batchSize"]
    saved = json.loads((tmp_path / "projector-checkpoint.json").read_text())
    assert saved["shards"]["s"] == sequence_number(records[-1])
