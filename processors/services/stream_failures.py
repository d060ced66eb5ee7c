"""The stream failure consumer: every batch a stream reader gave up on becomes a `record_failed` alert.

Lambda's event source mapping sends its on-failure destination metadata only (shard, sequence
range, condition, invocation count; "Example invocation record",
https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html), never the records:
"you must process this record and retrieve them from the stream before they expire". So the
records are read back with GetShardIterator(AT_SEQUENCE_NUMBER) and GetRecords while the stream
still holds them (24 h), and their keys, the event table's (stream, version), say which event
streams and versions failed. Once they are trimmed, the alert names the sequence range instead.
The alert id derives from the batch, so a redelivered failure message raises nothing twice.
Its cause is the batch's first event still in the stream (its causation and correlation), so a
trace of that request shows the failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics

from events.alerts import AlertRaised
from events.envelope import Cause, CauseRef
from events.errors import DynafoldError
from processors.adapters.aws import error_code
from processors.telemetry.logs import make_logger
from projections.reactor.rules.alerts import alert_id

SERVICE = "stream-failures"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
logger = make_logger(SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

GET_RECORDS_LIMIT = 1000  # the GetRecords maximum
MAX_EMPTY_PAGES = 3  # an open shard answers empty pages at its tip; the range has ended by then
MESSAGE_LIMIT = 1000
# Errors meaning "the stream no longer holds these records": trimmed after 24 h, or a stream
# (or shard) that is gone, e.g. after the stream was disabled and enabled again.
GONE = ("TrimmedDataAccessException", "ResourceNotFoundException")


class InvalidFailureRecord(DynafoldError):
    """A failure queue message that is not a DynamoDB stream on-failure record."""


@dataclass(frozen=True)
class FailedBatch:
    """One on-failure record: which function gave up on which range of which shard, and why."""

    function_arn: str
    condition: str  # RetryAttemptsExhausted, RecordAgeExceeded, ...
    invocations: int
    function_error: str | None  # "Unhandled" when the function failed; None for partial batch responses
    shard_id: str
    start: str
    end: str
    batch_size: int
    stream_arn: str

    @property
    def function_name(self) -> str:
        """The function of the ARN (arn:aws:lambda:region:account:function:name[:qualifier])."""
        parts = self.function_arn.split(":")
        return parts[6] if len(parts) > 6 else self.function_arn

    @property
    def key(self) -> str:
        return f"{self.function_arn}|{self.shard_id}|{self.start}|{self.end}"


@dataclass(frozen=True)
class FailedRecords:
    """What the stream still held of a batch: event (stream -> versions) and types, by sequence."""

    found: int
    streams: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    gone: str | None = None  # why none (or not all) could be read
    cause: CauseRef | None = None  # the first failed event (its id and correlation), if read back


def parse_failure_record(body: str) -> FailedBatch:
    """An SQS message body from the on-failure destination, checked member by member."""
    try:
        record = json.loads(body)
        request, info = record["requestContext"], record["DDBStreamBatchInfo"]
        response = record.get("responseContext") or {}  # none when records aged out before an invocation
        return FailedBatch(
            function_arn=str(request["functionArn"]), condition=str(request["condition"]),
            invocations=int(request.get("approximateInvokeCount", 0)),
            function_error=response.get("functionError") or None,
            shard_id=str(info["shardId"]), start=str(info["startSequenceNumber"]),
            end=str(info["endSequenceNumber"]), batch_size=int(info["batchSize"]),
            stream_arn=str(info["streamArn"]))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise InvalidFailureRecord(f"not a DynamoDB stream on-failure record: {type(error).__name__}: {error}") \
            from None


def identify(records: list[Mapping[str, Any]]) -> tuple[dict[str, tuple[int, ...]], tuple[str, ...]]:
    """The event table keys (stream, version) and event types of stream records (low-level JSON)."""
    versions: dict[str, set[int]] = {}
    types: set[str] = set()
    for record in records:
        image = record.get("dynamodb", {})
        keys = image.get("Keys", {})
        stream = keys.get("stream", {}).get("S")
        version = keys.get("version", {}).get("N")
        if stream is not None and version is not None:
            versions.setdefault(stream, set()).add(int(version))
        event_type = image.get("NewImage", {}).get("type", {}).get("S")
        if event_type:
            types.add(event_type)
    return {stream: tuple(sorted(v)) for stream, v in sorted(versions.items())}, tuple(sorted(types))


def first_cause(records: list[Mapping[str, Any]]) -> CauseRef | None:
    """The first record's event as a cause: its id and correlation from the NewImage."""
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage", {})
        event_id, correlation = image.get("id", {}).get("S"), image.get("correlation_id", {}).get("S")
        if event_id and correlation:
            return CauseRef(event_id, correlation)
    return None


def _ranges(versions: tuple[int, ...]) -> str:
    """1,2,3,5 -> 'v1-3, v5'."""
    runs: list[list[int]] = []
    for version in versions:
        if runs and version == runs[-1][-1] + 1:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(f"v{run[0]}" if len(run) == 1 else f"v{run[0]}-{run[-1]}" for run in runs)


def record_failed_alert(batch: FailedBatch, records: FailedRecords) -> AlertRaised:
    """The alert for a batch a function gave up on: what failed (streams and versions, or the range)
    and why (the condition, the invocations, whether the function itself failed)."""
    why = f"{batch.condition} after {batch.invocations} invocation(s)"
    if batch.function_error:
        why += f", function error {batch.function_error}"
    elif batch.invocations:
        why += ", records reported as failed (batchItemFailures)"
    message = (f"{batch.function_name} gave up on {batch.batch_size} record(s) of shard {batch.shard_id}, "
               f"sequence {batch.start}..{batch.end} ({why}).")
    if records.streams:
        affected = "; ".join(f"{stream} {_ranges(v)}" for stream, v in records.streams.items())
        message += f" Events: {affected}."
        if records.types:
            message += f" Types: {', '.join(records.types)}."
    if records.gone:
        message += f" {records.gone}"
    return AlertRaised(alert_id=alert_id("record_failed", batch.key), alert_type="record_failed",
                       severity="critical", subject=f"consumer:{batch.function_name}",
                       message=message[:MESSAGE_LIMIT])


class StreamFailures:
    """Reads back a failed batch's records and raises its alert (``raise_alert`` appends it once)."""

    def __init__(self, streams: Any, raise_alert: Callable[[AlertRaised, Cause | None], bool]) -> None:
        self._streams = streams
        self._raise_alert = raise_alert

    def handle(self, batch: FailedBatch) -> tuple[AlertRaised, FailedRecords, bool]:
        """The alert, what was found, and whether this call raised it (False: raised before)."""
        records = self.fetch(batch)
        alert = record_failed_alert(batch, records)
        return alert, records, self._raise_alert(alert, records.cause)

    def fetch(self, batch: FailedBatch) -> FailedRecords:
        """The records from the batch's first sequence number to its last, while the stream holds them.

        At ParallelizationFactor 1 that range is the batch. Above 1 the shard's records are dealt
        to concurrent batches by item key, so the range also holds other batches' records: every
        record of it is read and named, so a failed event is never left out (an alert may name more
        events than failed, never fewer)."""
        found: list[Mapping[str, Any]] = []
        try:
            iterator = self._streams.get_shard_iterator(
                StreamArn=batch.stream_arn, ShardId=batch.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=batch.start)["ShardIterator"]
            empty_pages, end = 0, int(batch.end)
            while iterator and empty_pages < MAX_EMPTY_PAGES:
                page = self._streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
                records = page.get("Records", [])
                empty_pages = 0 if records else empty_pages + 1
                within = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) <= end]
                found.extend(within)
                if len(within) < len(records):
                    break
                iterator = page.get("NextShardIterator")
        except Exception as error:
            code = error_code(error)
            if code not in GONE:
                raise
            return self._identified(found, batch, f"The stream no longer holds these records ({code}); "
                                                  f"replay shard {batch.shard_id} sequence {batch.start}.."
                                                  f"{batch.end} from the event log.")
        gone = None
        if len(found) < batch.batch_size:
            gone = (f"Only {len(found)} of {batch.batch_size} record(s) were still in the stream; the range is "
                    f"sequence {batch.start}..{batch.end} of shard {batch.shard_id}.")
        return self._identified(found, batch, gone)

    @staticmethod
    def _identified(found: list[Mapping[str, Any]], batch: FailedBatch, gone: str | None) -> FailedRecords:
        # The batch's first record opens the range (AT_SEQUENCE_NUMBER start): the alert's cause.
        streams, types = identify(found)
        return FailedRecords(len(found), streams, types, gone, first_cause(found))
