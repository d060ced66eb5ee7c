"""A local stand-in for Lambda's DynamoDB Streams event source mapping.

The same Lambda handlers that run on AWS run locally against the real stream of the events
table in DynamoDB Local, so the runner reproduces what the handlers can observe of the event
source mapping: the event shape, batch sizes, shard order (parents before children), partial
batch responses, bisection on function errors, the retry quota and its on-failure record, and
checkpoints that survive a restart. Clients are injected; this module never builds one.

ParallelizationFactor F above 1 is Lambda's promise and no more: "When you increase the number of
concurrent batches per shard, Lambda still ensures in-order processing at the item (partition and
sort key) level" (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html, "Polling and batching
streams"). So a shard's records are dealt to F lanes by a hash of each record's item key (its
``Keys``: partition and sort key), each lane batches, retries, bisects and discards on its own
records in shard order, and the F batches of a round are invoked one after another, the first lane
turning each round: a record may reach the handler before an earlier record of another item (of the
same partition key too: every event is its own item), never before an earlier record of its own.
The shard's checkpoint is the last record before which every record is done, so a lane that is
still retrying holds it back and a restart delivers the other lanes' later records again, as a
resumed mapping would. (Locally the batches of a round run one after another, not at once: the
handler is one object here, where Lambda gives each concurrent batch its own execution environment.)
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from events.envelope import parse_time
from processors.local.files import append_line, read_json_lines, write_atomically
from processors.operations.template import Tag, load_template

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], "dict[str, Any] | None"]


class PlatformMetricsSink(Protocol):
    """Where a stand-in reports what the AWS service would report of it (processors/local/platform_metrics.py)."""

    def put(self, namespace: str, name: str, unit: str, value: float, dimensions: Mapping[str, str]) -> None: ...


class FailureQueue(Protocol):
    """An SQS-like on-failure destination: the record's JSON is the message body, as Lambda sends it."""

    def send_body(self, body: str, delay_seconds: float = 0.0) -> None: ...


STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")
GET_RECORDS_LIMIT = 1000  # the GetRecords maximum
# Shard iterators expire 15 minutes after they are handed out; renew a little before that.
ITERATOR_REFRESH_SECONDS = 14 * 60
DEFAULT_POLL_SECONDS = 0.25  # Lambda polls each shard four times a second
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
INFINITE = -1  # MaximumRetryAttempts / MaximumRecordAgeInSeconds: no limit
MINIMUM_RECORD_AGE, MAXIMUM_RECORD_AGE = 60, 604_800
# Lambda's function timeout when the template gives none (Timeout: "The default is 3 seconds",
# https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html).
LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3
MAXIMUM_PARALLELIZATION_FACTOR = 10
READ_AHEAD_BATCHES = 10  # records read past the checkpoint, in batches per lane, while a lane retries


@dataclass(frozen=True)
class StreamSettings:
    """The event source mapping properties that change what a handler sees.

    Defaults and ranges are Lambda's, from "Lambda parameters for DynamoDB event source mappings"
    (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html): BatchSize 100 (max
    10,000), MaximumBatchingWindowInSeconds 0, BisectBatchOnFunctionError false,
    MaximumRetryAttempts -1 (infinite; 0..10,000), MaximumRecordAgeInSeconds -1 (infinite; else
    60..604,800), ParallelizationFactor 1 (max 10). ``maximum_record_age_seconds=None`` is -1. With
    infinite retries a poison record blocks its shard (its lane, above factor 1) until the stream
    trims it (24 h), locally as on AWS: the template bounds both.
    """

    batch_size: int = 100
    batching_window_seconds: float = 0
    maximum_retry_attempts: int = INFINITE
    bisect_batch_on_function_error: bool = False
    starting_position: str = "TRIM_HORIZON"
    maximum_record_age_seconds: int | None = None
    report_batch_item_failures: bool = True
    parallelization_factor: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.parallelization_factor <= MAXIMUM_PARALLELIZATION_FACTOR:
            raise ValueError(f"parallelization_factor must be 1..{MAXIMUM_PARALLELIZATION_FACTOR}, "
                             f"not {self.parallelization_factor}")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1..10000, not {self.batch_size}")
        if not 0 <= self.batching_window_seconds <= 300:
            raise ValueError(f"batching_window_seconds must be 0..300, not {self.batching_window_seconds}")
        if self.maximum_retry_attempts != INFINITE and not 0 <= self.maximum_retry_attempts <= 10_000:
            raise ValueError(f"maximum_retry_attempts must be -1 (infinite) or 0..10000, "
                             f"not {self.maximum_retry_attempts}")
        if self.starting_position not in STARTING_POSITIONS:
            raise ValueError(f"starting_position must be one of {STARTING_POSITIONS}, not {self.starting_position!r}")
        age = self.maximum_record_age_seconds
        if age is not None and not MINIMUM_RECORD_AGE <= age <= MAXIMUM_RECORD_AGE:
            raise ValueError(f"maximum_record_age_seconds must be -1/None (infinite) or "
                             f"{MINIMUM_RECORD_AGE}..{MAXIMUM_RECORD_AGE}, not {age}")

    @property
    def retries_are_bounded(self) -> bool:
        return self.maximum_retry_attempts != INFINITE

    @property
    def poll_interval(self) -> float:
        """Locally the batching window doubles as the poll interval: both bound delivery delay."""
        return self.batching_window_seconds or DEFAULT_POLL_SECONDS


# --- settings from the SAM template -------------------------------------------------------------


def settings_from_template(function_logical_id: str, template: dict[str, Any] | None = None) -> StreamSettings:
    """The StreamSettings of a function's `Type: DynamoDB` event in the SAM template.

    Read from the template so the local runner batches and retries exactly as the deployed
    event source mapping will; absent properties take Lambda's defaults.
    """
    template = template if template is not None else load_template()
    props = _dynamodb_event_properties(template, function_logical_id)

    def value(key: str, default: Any) -> Any:
        return _literal(template, props[key], f"{function_logical_id}.{key}") if key in props else default

    record_age = int(value("MaximumRecordAgeInSeconds", INFINITE))
    return StreamSettings(
        batch_size=int(value("BatchSize", 100)),
        batching_window_seconds=float(value("MaximumBatchingWindowInSeconds", 0)),
        maximum_retry_attempts=int(value("MaximumRetryAttempts", INFINITE)),
        bisect_batch_on_function_error=_boolean(value("BisectBatchOnFunctionError", False)),
        starting_position=str(value("StartingPosition", "TRIM_HORIZON")),
        maximum_record_age_seconds=None if record_age == INFINITE else record_age,
        report_batch_item_failures="ReportBatchItemFailures" in (value("FunctionResponseTypes", []) or []),
        parallelization_factor=int(value("ParallelizationFactor", 1)),
    )


def timeout_from_template(function_logical_id: str, template: dict[str, Any] | None = None) -> float:
    """The function's Timeout (its own, else the Globals', else Lambda's default of 3 s)."""
    template = template if template is not None else load_template()
    resource = (template.get("Resources") or {}).get(function_logical_id)
    if resource is None or resource.get("Type") != "AWS::Serverless::Function":
        raise KeyError(f"{function_logical_id} is not an AWS::Serverless::Function of the template")
    own = (resource.get("Properties") or {}).get("Timeout")
    shared = ((template.get("Globals") or {}).get("Function") or {}).get("Timeout")
    timeout = own if own is not None else shared if shared is not None else LAMBDA_DEFAULT_TIMEOUT_SECONDS
    return float(_literal(template, timeout, f"{function_logical_id}.Timeout"))


def _dynamodb_event_properties(template: Mapping[str, Any], function_logical_id: str) -> Mapping[str, Any]:
    resource = (template.get("Resources") or {}).get(function_logical_id)
    if resource is None or resource.get("Type") != "AWS::Serverless::Function":
        raise KeyError(f"{function_logical_id} is not an AWS::Serverless::Function of the template")
    events = (resource.get("Properties") or {}).get("Events") or {}
    streams = [event.get("Properties") or {} for event in events.values() if event.get("Type") == "DynamoDB"]
    if len(streams) != 1:
        raise ValueError(f"{function_logical_id} has {len(streams)} DynamoDB events; the runner needs exactly one")
    return streams[0]


def _literal(template: Mapping[str, Any], value: Any, where: str) -> Any:
    """A property's value; a `!Ref` to a template parameter resolves to the parameter's Default."""
    if not isinstance(value, Tag):
        return value
    parameters = template.get("Parameters") or {}
    if value.name == "Ref" and isinstance(value.value, str) and "Default" in parameters.get(value.value, {}):
        return parameters[value.value]["Default"]
    raise ValueError(f"{where}: !{value.name} {value.value!r} cannot be resolved locally; use a literal")


def _boolean(value: Any) -> bool:
    return value.strip().lower() == "true" if isinstance(value, str) else bool(value)


# --- the Lambda event ---------------------------------------------------------------------------


def to_lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One GetRecords record as Lambda delivers it: JSON-safe, with eventSourceARN and the region.

    boto3 turns ApproximateCreationDateTime into a datetime and binary attributes into bytes;
    Lambda hands the handler the wire JSON (epoch seconds, base64), so both are turned back.
    Attribute values stay in low-level DynamoDB JSON ({"S": ...}).
    """
    lambda_record: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": record.get("eventSource", "aws:dynamodb"),
        "awsRegion": region,
        "dynamodb": _jsonable(record["dynamodb"]),
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # TTL deletions carry the service principal
        lambda_record["userIdentity"] = _jsonable(record["userIdentity"])
    return lambda_record


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return _epoch(value)
    return value


def _epoch(moment: datetime) -> int | float:
    seconds = moment.timestamp()
    return int(seconds) if seconds.is_integer() else seconds


def sequence_number(record: Mapping[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def lane_of(record: Mapping[str, Any], factor: int) -> int:
    """Which of a shard's ``factor`` concurrent batch processors gets the record: a hash of its item
    key (every key attribute, name and value), so one item's records keep their order and nothing
    else is promised."""
    if factor == 1:
        return 0
    keys = json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True, separators=(",", ":"))
    return zlib.crc32(keys.encode("utf-8")) % factor


@dataclass
class LambdaContext:
    """The parts of Lambda's context object handlers and Powertools read."""

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    deadline: float  # monotonic() at which the invocation would time out
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    monotonic: Callable[[], float] = time.monotonic

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.monotonic()) * 1000))

    @classmethod
    def local(cls, function_name: str, timeout_seconds: float, request_id: str | None = None,
              region: str = "us-east-1", monotonic: Callable[[], float] = time.monotonic) -> "LambdaContext":
        """The context of one local invocation of ``function_name`` (a fresh request id by default)."""
        return cls(function_name, request_id or str(uuid.uuid4()), function_arn(function_name, region),
                   monotonic() + timeout_seconds, log_group_name=f"/aws/lambda/{function_name}",
                   monotonic=monotonic)


def function_arn(function_name: str, region: str = "us-east-1") -> str:
    """A local function's ARN, in a placeholder account."""
    return f"arn:aws:lambda:{region}:000000000000:function:{function_name}"


# --- checkpoints --------------------------------------------------------------------------------


@dataclass
class Checkpoints:
    """Per consumer: shard id -> last fully processed sequence number, and the finished shards.

    Written atomically (temp file + os.replace) after every batch, so a crash leaves either
    the old or the new position and a restart neither repeats nor skips a handled record.
    """

    path: Path
    stream_arn: str
    positions: dict[str, str] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> "Checkpoints | None":
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, data["stream_arn"], dict(data.get("shards", {})), set(data.get("finished", [])))

    def save(self) -> None:
        body = json.dumps({
            "version": 1,
            "stream_arn": self.stream_arn,
            "shards": self.positions,
            "finished": sorted(self.finished),
            "updated": _iso_now(),
        }, indent=1, sort_keys=True)
        write_atomically(self.path, body)

    def prune(self, listed: set[str]) -> None:
        """Forget shards the stream no longer lists (trimmed after 24 h); their children are free to go."""
        for shard_id in set(self.positions) - listed:
            if shard_id not in self.finished:
                logger.warning("shard %s was trimmed before it was fully processed", shard_id)
            del self.positions[shard_id]
        self.finished &= listed


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the runner ---------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What one run_once (or drain) did: redeliveries count again in records and batches."""

    records: int = 0
    batches: int = 0
    failed_batches: int = 0
    discarded_records: int = 0

    def add(self, other: "RunSummary") -> None:
        self.records += other.records
        self.batches += other.batches
        self.failed_batches += other.failed_batches
        self.discarded_records += other.discarded_records


@dataclass
class _Lane:
    """One of a shard's concurrent batch processors (one per ParallelizationFactor): its records not
    yet done, in shard order, and its own bisection and retry state."""

    pending: deque[dict[str, Any]] = field(default_factory=deque)  # dealt to this lane, not yet done
    splits: list[int] = field(default_factory=list)  # sizes of the next batches after bisection
    failing: tuple[str, int] | None = None  # (sequence number, failed attempts) of the head record
    last_failure: "_Outcome | None" = None  # the last failed invocation's answer (its responseContext)


@dataclass
class _Shard:
    """In-memory reading state of one shard; only `Checkpoints` is durable."""

    shard_id: str
    parent_id: str | None
    closed: bool
    iterator: str | None = None
    iterator_at: float = 0.0
    read_to_end: bool = False  # GetRecords returned no NextShardIterator: a closed shard, all read
    pending: deque[dict[str, Any]] = field(default_factory=deque)  # fetched, not yet checkpointed
    done: set[str] = field(default_factory=set)  # sequence numbers of pending records done (out of order)
    lanes: list[_Lane] = field(default_factory=list)
    rounds: int = 0  # batches rounds delivered: which lane goes first



@dataclass(frozen=True)
class _Outcome:
    """A handler's answer: `done` leading records succeeded; the rest failed unless done == size."""

    done: int
    error: str | None = None
    function_error: bool = False


class StreamRunner:
    """Reads every shard of a table's stream and calls a Lambda handler as the event source mapping would.

    Each runner is one consumer (`name`) with its own checkpoint file, so the projector and
    the reactor read the same stream independently, as two event source mappings do.
    """

    def __init__(
        self,
        streams: Any,
        dynamodb: Any,
        table_name: str,
        handler: Handler,
        settings: StreamSettings = StreamSettings(),
        checkpoint_dir: Path = Path(".dynafold/checkpoints"),
        name: str = "consumer",
        failure_destination: "Path | FailureQueue | None" = None,
        *,
        function_name: str | None = None,
        timeout_seconds: float = 60.0,
        iterator_refresh_seconds: float = ITERATOR_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        platform_metrics: "PlatformMetricsSink | None" = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"consumer name {name!r} must match {_NAME_RE.pattern}")
        self._streams = streams
        self._dynamodb = dynamodb
        self.table_name = table_name
        self._handler = handler
        self.settings = settings
        self.name = name
        self.checkpoint_path = Path(checkpoint_dir) / f"{name}-checkpoint.json"
        # A queue (the local stack's stream failure queue), else a JSON Lines file (tests, inspection).
        self.failure_destination = (failure_destination if failure_destination is not None  # an empty queue is falsy
                                    else Path(checkpoint_dir) / f"{name}-failures.jsonl")
        self.function_name = function_name or f"dynafold-{name}"
        self._timeout_seconds = timeout_seconds
        self._monotonic = monotonic
        self._iterator_refresh_seconds = iterator_refresh_seconds
        self._platform_metrics = platform_metrics  # where IteratorAge goes, as Lambda reports it to CloudWatch
        self._clock = clock  # the clock the records' times are on (a fast-forwarded one in the demo)
        self._region = getattr(getattr(dynamodb, "meta", None), "region_name", None) or "us-east-1"
        self._stream_arn: str | None = None
        self._checkpoints: Checkpoints | None = None
        self._shards: dict[str, _Shard] = {}

    # -- public ---------------------------------------------------------------------------------

    @property
    def stream_arn(self) -> str:
        if self._stream_arn is None:
            table = self._dynamodb.describe_table(TableName=self.table_name)["Table"]
            if not table.get("LatestStreamArn"):
                raise ValueError(f"table {self.table_name} has no stream")
            self._stream_arn = table["LatestStreamArn"]
        return self._stream_arn

    def run_once(self) -> RunSummary:
        """Deliver everything currently in the stream, shard by shard, parents before children."""
        summary = RunSummary()
        checkpoints = self._start()
        while True:
            self._sync_shards(checkpoints)
            finished_any = False
            for shard in self._ready_shards(checkpoints):
                finished_any |= self._process_shard(shard, summary)
            if not finished_any:  # a finished parent may have released children: look again
                return summary

    def run_forever(self, stop_event: threading.Event) -> None:
        """Poll until stop_event is set; a failed poll (engine restarting) is logged and retried."""
        while not stop_event.is_set():
            try:
                self.run_once()
            except Exception:  # keep polling like the managed poller does
                logger.exception("%s: poll of %s failed", self.name, self.table_name)
            stop_event.wait(self.settings.poll_interval)

    def drain(self, timeout: float = 30.0) -> RunSummary:
        """run_once until a pass delivers nothing: the stream is caught up (tests, the demo)."""
        deadline = time.monotonic() + timeout
        total = RunSummary()
        while True:
            summary = self.run_once()
            total.add(summary)
            if summary.records == 0 and summary.discarded_records == 0:
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: stream still delivering after {timeout:.0f}s")

    # -- shards ---------------------------------------------------------------------------------

    def _start(self) -> Checkpoints:
        """Load the checkpoints once; a new consumer (or a recreated table) begins at its starting position."""
        if self._checkpoints is not None:
            return self._checkpoints
        arn = self.stream_arn
        loaded = Checkpoints.load(self.checkpoint_path)
        if loaded is not None and loaded.stream_arn != arn:
            logger.warning("%s: checkpoints are for %s, the table now streams %s; starting afresh",
                           self.name, loaded.stream_arn, arn)
            loaded = None
        if loaded is None:
            loaded = Checkpoints(self.checkpoint_path, arn)
            if self.settings.starting_position == "LATEST":
                self._position_at_latest(loaded)
            loaded.save()
        self._checkpoints = loaded
        return loaded

    def _position_at_latest(self, checkpoints: Checkpoints) -> None:
        """Checkpoint the current end of each open shard, closed ones as finished.

        A LATEST iterator has no sequence number to persist, so a consumer stopped before its
        first record would start over at TRIM_HORIZON; reading to the end once gives a real
        position. Children created later are read from their start, as Lambda does.
        """
        for description in self._list_shards():
            shard_id = description["ShardId"]
            if "EndingSequenceNumber" in description.get("SequenceNumberRange", {}):
                checkpoints.finished.add(shard_id)
                continue
            last = self._last_sequence_number(shard_id)
            if last is not None:
                checkpoints.positions[shard_id] = last

    def _last_sequence_number(self, shard_id: str) -> str | None:
        iterator = self._streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        last = None
        while iterator:
            response = self._streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
            if not response["Records"]:
                break
            last = sequence_number(response["Records"][-1])
            iterator = response.get("NextShardIterator")
        return last

    def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last

    def _sync_shards(self, checkpoints: Checkpoints) -> None:
        listed = {d["ShardId"]: d for d in self._list_shards()}
        for shard_id, description in listed.items():
            if shard_id not in self._shards:
                self._shards[shard_id] = _Shard(
                    shard_id, description.get("ParentShardId"),
                    "EndingSequenceNumber" in description.get("SequenceNumberRange", {}),
                    lanes=[_Lane() for _ in range(self.settings.parallelization_factor)])
        for shard_id in set(self._shards) - set(listed):
            del self._shards[shard_id]
        before = (len(checkpoints.positions), len(checkpoints.finished))
        checkpoints.prune(set(listed))
        if before != (len(checkpoints.positions), len(checkpoints.finished)):
            checkpoints.save()

    def _ready_shards(self, checkpoints: Checkpoints) -> list[_Shard]:
        """Unfinished shards whose parent is finished or gone: per-key order across a shard split."""
        return [
            shard for shard in self._shards.values()
            if shard.shard_id not in checkpoints.finished
            and (shard.parent_id is None or shard.parent_id in checkpoints.finished
                 or shard.parent_id not in self._shards)
        ]

    def _process_shard(self, shard: _Shard, summary: RunSummary) -> bool:
        """Deliver the shard's available records; True when it has just been finished."""
        while batches := self._next_batches(shard, summary):
            first = shard.rounds % len(batches)
            shard.rounds += 1
            for lane, batch in batches[first:] + batches[:first]:  # a round's concurrent batches
                self._deliver(shard, lane, batch, summary)
        if shard.read_to_end and not shard.pending:
            checkpoints = self._require_checkpoints()
            checkpoints.finished.add(shard.shard_id)
            checkpoints.save()
            return True
        return False

    # -- reading --------------------------------------------------------------------------------

    def _next_batches(self, shard: _Shard, summary: RunSummary) -> list[tuple[_Lane, list[dict[str, Any]]]]:
        """The next batch of every lane that has records (records past their age discarded first)."""
        self._fill(shard, self.settings.batch_size)
        batches = []
        for lane in shard.lanes:
            expired = self._expired_prefix(lane)
            if expired:
                self._discard(shard, lane, expired, "RecordAgeExceeded")
                summary.discarded_records += len(expired)
            size = lane.splits[0] if lane.splits else self.settings.batch_size
            if lane.pending:
                batches.append((lane, list(islice(lane.pending, size))))
        return batches

    def _fill(self, shard: _Shard, size: int) -> None:
        """Read on until every lane has a full batch: a lane that is retrying must not starve the
        others (they go on past it), up to READ_AHEAD_BATCHES batches a lane held in memory."""
        limit = size * len(shard.lanes) * READ_AHEAD_BATCHES
        while (min(len(lane.pending) for lane in shard.lanes) < size and len(shard.pending) < limit
               and not shard.read_to_end):
            response = self._get_records(shard)
            if response is None:
                return
            records = [to_lambda_record(r, self.stream_arn, self._region) for r in response.get("Records", [])]
            shard.pending.extend(records)
            for record in records:
                shard.lanes[lane_of(record, len(shard.lanes))].pending.append(record)
            shard.iterator = response.get("NextShardIterator")
            shard.read_to_end = shard.iterator is None
            if not records:  # caught up with the shard for now
                return

    def _get_records(self, shard: _Shard) -> dict[str, Any] | None:
        """One GetRecords call; a stale, expired or trimmed iterator is re-acquired at the read position."""
        for _ in range(3):
            if shard.iterator is None or time.monotonic() - shard.iterator_at > self._iterator_refresh_seconds:
                self._reacquire(shard)
                if shard.read_to_end:
                    return None
            try:
                response = self._streams.get_records(
                    ShardIterator=shard.iterator,
                    Limit=min(GET_RECORDS_LIMIT, self.settings.batch_size * self.settings.parallelization_factor))
            except Exception as error:
                if _error_code(error) not in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                    raise
                logger.info("%s: %s on shard %s; re-acquiring the iterator",
                            self.name, _error_code(error), shard.shard_id)
                shard.iterator = None
                continue
            shard.iterator_at = time.monotonic()
            return response
        raise RuntimeError(f"{self.name}: no usable iterator for shard {shard.shard_id}")

    def _reacquire(self, shard: _Shard) -> None:
        """A fresh iterator just after what was read: the last fetched record, else the checkpoint.

        Sequence numbers are durable positions, iterators are not, so an expired or stale
        iterator is replaced without re-reading or skipping anything.
        """
        if shard.pending:
            position: str | None = sequence_number(shard.pending[-1])
        else:
            position = self._require_checkpoints().positions.get(shard.shard_id)
        try:
            shard.iterator = self._shard_iterator(shard.shard_id, position)
        except Exception as error:
            code = _error_code(error)
            if code == "TrimmedDataAccessException" and position is not None:
                logger.warning("%s: records after %s on shard %s were trimmed; continuing at TRIM_HORIZON",
                               self.name, position, shard.shard_id)
                shard.iterator = self._shard_iterator(shard.shard_id, None)
            elif code == "ResourceNotFoundException":
                logger.warning("%s: shard %s no longer exists", self.name, shard.shard_id)
                shard.iterator, shard.read_to_end = None, True
                return
            else:
                raise
        shard.iterator_at = time.monotonic()

    def _shard_iterator(self, shard_id: str, after: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if after is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        return self._streams.get_shard_iterator(**kwargs)["ShardIterator"]

    def _expired_prefix(self, lane: _Lane) -> list[dict[str, Any]]:
        """Records older than MaximumRecordAgeInSeconds at the head of the lane (ages only grow backwards)."""
        limit = self.settings.maximum_record_age_seconds
        if limit is None:
            return []
        oldest_allowed = time.time() - limit
        expired = []
        for record in lane.pending:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if not isinstance(created, int | float) or created >= oldest_allowed:
                break
            expired.append(record)
        return expired

    # -- delivering -----------------------------------------------------------------------------

    def _deliver(self, shard: _Shard, lane: _Lane, batch: list[dict[str, Any]], summary: RunSummary) -> None:
        summary.batches += 1
        summary.records += len(batch)
        outcome = self._invoke(batch)
        if outcome.done:
            self._commit(shard, lane, batch[:outcome.done])
        if outcome.done == len(batch):
            return
        summary.failed_batches += 1
        failed = batch[outcome.done:]
        if outcome.function_error and self.settings.bisect_batch_on_function_error and len(failed) > 1:
            half = (len(failed) + 1) // 2  # splitting does not consume the retry quota
            lane.splits[:1] = [half, len(failed) - half]
            return
        attempts = self._note_failure(shard, lane, sequence_number(failed[0]), outcome)
        if self.settings.retries_are_bounded and attempts > self.settings.maximum_retry_attempts:
            self._discard(shard, lane, failed, "RetryAttemptsExhausted")
            summary.discarded_records += len(failed)

    def _invoke(self, batch: list[dict[str, Any]]) -> _Outcome:
        """Call the handler with a fresh copy of the batch, as each Lambda invocation gets fresh JSON.

        A handler that runs past the function's Timeout is a function error, whatever it returns:
        Lambda stops it ("Task timed out after N seconds") and the mapping retries (and bisects)
        the batch (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html,
        "During invocation ... returns an error"). Locally it cannot be stopped midway, so its
        answer is ignored once it is late; its writes stay, as a timed-out Lambda's do.
        """
        self._report_iterator_age(batch)
        started = self._monotonic()
        context = LambdaContext.local(self.function_name, self._timeout_seconds, region=self._region,
                                      monotonic=self._monotonic)
        try:
            response = self._handler({"Records": copy.deepcopy(batch)}, context)
        except Exception as error:  # noqa: BLE001 - a function error fails the whole batch
            logger.warning("%s: handler raised on a batch of %d: %s", self.name, len(batch), error)
            return _Outcome(0, f"{type(error).__name__}: {error}", function_error=True)
        elapsed = self._monotonic() - started
        if elapsed > self._timeout_seconds:
            logger.warning("%s: handler ran %.2f s on a batch of %d, past its %.2f s timeout",
                           self.name, elapsed, len(batch), self._timeout_seconds)
            return _Outcome(0, f"Task timed out after {self._timeout_seconds:.2f} seconds", function_error=True)
        return self._read_response(batch, response)

    def _report_iterator_age(self, batch: list[dict[str, Any]]) -> None:
        """Lambda's IteratorAge of this invocation: "the age of the last record in the batch when
        Lambda received it" (milliseconds, per function), what the iterator-age alarms watch.

        DynamoDB Local rounds ApproximateCreationDateTime down to the minute (AWS: to the second), which
        would make every age up to a minute too old; an event item's own time (milliseconds, stamped
        as it was appended) is used where the record has one."""
        if self._platform_metrics is None:
            return
        image = batch[-1]["dynamodb"].get("NewImage") or {}
        created = batch[-1]["dynamodb"].get("ApproximateCreationDateTime")
        written = (parse_time(image["time"]["S"]).timestamp() if "S" in (image.get("time") or {})
                   else created if isinstance(created, int | float) else None)
        if written is None:
            return
        self._platform_metrics.put("AWS/Lambda", "IteratorAge", "Milliseconds",
                                   max(0.0, (self._clock().timestamp() - written) * 1000.0),
                                   {"FunctionName": self.function_name})

    def _read_response(self, batch: list[dict[str, Any]], response: Any) -> _Outcome:
        """Partial batch response: records before the lowest failed sequence number are done.

        As on Lambda, an identifier that is missing or not in the batch fails the whole batch.
        """
        if not self.settings.report_batch_item_failures or not isinstance(response, Mapping):
            return _Outcome(len(batch))
        failures = response.get("batchItemFailures") or []
        if not failures:
            return _Outcome(len(batch))
        positions = {sequence_number(record): index for index, record in enumerate(batch)}
        identifiers = [item.get("itemIdentifier") if isinstance(item, Mapping) else None for item in failures]
        known = [identifier for identifier in identifiers if isinstance(identifier, str) and identifier in positions]
        if len(known) != len(identifiers):
            return _Outcome(0, f"invalid batchItemFailures {identifiers!r}")
        lowest = min(known, key=int)
        return _Outcome(positions[lowest], f"batchItemFailures from {lowest}")

    def _note_failure(self, shard: _Shard, lane: _Lane, head: str, outcome: _Outcome) -> int:
        """Failed attempts of the record the retry starts at; a new head starts a new count."""
        attempts = lane.failing[1] + 1 if lane.failing and lane.failing[0] == head else 1
        lane.failing = (head, attempts)
        lane.last_failure = outcome
        if not self.settings.retries_are_bounded and attempts % 10 == 0:
            logger.error("%s: record %s of shard %s failed %d times and retries are infinite: the shard "
                         "is blocked until the record ages out: %s", self.name, head, shard.shard_id, attempts,
                         outcome.error)
        return attempts

    def _commit(self, shard: _Shard, lane: _Lane, records: list[dict[str, Any]]) -> None:
        """Mark `records` (the head of the lane) done, and checkpoint the shard past every record
        before which all are done (all of them at factor 1); persisted when it moves."""
        for record in records:
            lane.pending.popleft()
            shard.done.add(sequence_number(record))
        remaining = len(records)
        while remaining and lane.splits:
            taken = min(remaining, lane.splits[0])
            lane.splits[0] -= taken
            remaining -= taken
            if lane.splits[0] == 0:
                lane.splits.pop(0)
        position = None
        while shard.pending and sequence_number(shard.pending[0]) in shard.done:
            position = sequence_number(shard.pending.popleft())
            shard.done.discard(position)
        if position is not None:
            checkpoints = self._require_checkpoints()
            checkpoints.positions[shard.shard_id] = position
            checkpoints.save()

    def _discard(self, shard: _Shard, lane: _Lane, records: list[dict[str, Any]], condition: str) -> None:
        """Record the batch on the failure destination, then move the shard past it.

        Written before the checkpoint moves, so a crash in between repeats the record rather
        than losing it. The record is what Lambda sends an on-failure destination, member for
        member ("Example invocation record" of
        https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html): metadata only,
        never the records or the error, so the consumer must fetch them from the stream.
        """
        head = sequence_number(records[0])
        invocations = lane.failing[1] if lane.failing and lane.failing[0] == head else 0
        last = lane.last_failure if invocations else None
        self._append_failure(on_failure_record(
            function_arn=self._function_arn, condition=condition, invocations=invocations, last_failure=last,
            shard_id=shard.shard_id, records=records, stream_arn=self.stream_arn))
        logger.error("%s: discarded %d record(s) %s..%s of shard %s: %s (%d invocation(s)%s)", self.name,
                     len(records), head, sequence_number(records[-1]), shard.shard_id, condition, invocations,
                     f", last: {last.error}" if last and last.error else "")
        lane.failing, lane.last_failure = None, None
        self._commit(shard, lane, records)

    def _append_failure(self, line: dict[str, Any]) -> None:
        if isinstance(self.failure_destination, Path):
            append_line(self.failure_destination, json.dumps(line, sort_keys=True))
        else:
            self.failure_destination.send_body(json.dumps(line))

    @property
    def _function_arn(self) -> str:
        return function_arn(self.function_name, self._region)

    def _require_checkpoints(self) -> Checkpoints:
        if self._checkpoints is None:  # a programming error: run_once() loads them first
            raise RuntimeError(f"{self.name}: checkpoints read before run_once() loaded them")
        return self._checkpoints


def on_failure_record(*, function_arn: str, condition: str, invocations: int, last_failure: "_Outcome | None",
                      shard_id: str, records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The invocation record Lambda sends a DynamoDB stream mapping's on-failure destination.

    responseContext describes the last invocation: ``functionError: "Unhandled"`` when the function
    failed (raised, timed out); for a batch the function answered with batchItemFailures the
    invocation itself succeeded, so functionError is null, as in records Lambda delivered for
    partial batch responses (observed: ``"responseContext": {"statusCode": 200, "executedVersion":
    "1", "functionError": null}``). Records that aged out before any invocation have none.
    """
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "version": "1.0",
        "timestamp": _iso_now(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
            "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
    if last_failure is not None:
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST",
                                     "functionError": "Unhandled" if last_failure.function_error else None}
    return record


def _error_code(error: BaseException) -> str | None:
    """The service error code of a botocore ClientError (or anything shaped like one)."""
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        return response.get("Error", {}).get("Code")
    return None


def read_failures(path: Path) -> list[dict[str, Any]]:
    """The on-failure records a runner wrote, oldest first (for tests and the CLI)."""
    return read_json_lines(path)


__all__ = [
    "LambdaContext", "RunSummary", "StreamRunner", "StreamSettings", "on_failure_record", "read_failures",
    "sequence_number", "settings_from_template", "timeout_from_template", "to_lambda_record",
]
