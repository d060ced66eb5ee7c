"""``ReaderPositions`` locally: where the local stack's readers stand, from the state its stand-ins keep.

The stream runners (processors/local/stream_runner.py, the event source mapping's stand-in)
checkpoint the last record each reader applied, per shard; the stream holds what came after. A
reader's lag is then the issue's own measure: the time of the newest event in the log against the
time of the last event it applied (0 when nothing waits). The failure consumer reads the stream
failure queue: what waits there is its backlog, the oldest message's age its lag (SQS's
ApproximateAgeOfOldestMessage). On AWS Lambda keeps a mapping's position to itself, so there the
lag comes from the metric Lambda reports (processors/services/status.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from events.envelope import parse_time
from processors.local.queues import LocalSqsQueue
from processors.local.stream_runner import GET_RECORDS_LIMIT, Checkpoints
from projections.health.status import Position

MAX_COUNTED = 10_000  # records counted past a checkpoint before saying "at least"


def _time(record: dict[str, Any]) -> datetime | None:
    """An event's own time (the log's clock), else when the stream got the record."""
    image = record.get("dynamodb", {}).get("NewImage", {})
    if "time" in image:
        return parse_time(image["time"]["S"])
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    return created if isinstance(created, datetime) else None


class CheckpointPositions:
    def __init__(self, streams: Any, dynamodb: Any, events_table: str, checkpoint_dir: Path,
                 failure_queue: LocalSqsQueue, readers: Sequence[str] = ("projector", "reactor")) -> None:
        self._streams = streams
        self._dynamodb = dynamodb
        self.events_table = events_table
        self.checkpoint_dir = checkpoint_dir
        self.failure_queue = failure_queue
        self.readers = tuple(readers)

    @property
    def where(self) -> str:
        return f"the checkpoints in {self.checkpoint_dir}"

    def read(self, now: datetime) -> dict[str, Position]:
        found = {"stream-failures": self._queue_position(now)}
        arn = self._dynamodb.describe_table(TableName=self.events_table)["Table"].get("LatestStreamArn")
        if not arn:
            return found
        shards = self._shards(arn)
        for reader in self.readers:
            checkpoints = Checkpoints.load(self.checkpoint_dir / f"{reader}-checkpoint.json")
            if checkpoints is not None and checkpoints.stream_arn == arn:  # else: not read here, or an old stream
                found[reader] = self._position(arn, shards, checkpoints)
        return found

    def _position(self, arn: str, shards: list[str], checkpoints: Checkpoints) -> Position:
        pending, capped = 0, False
        applied: list[datetime] = []  # the last record applied on each shard
        waiting: list[datetime] = []  # every record not yet applied
        for shard in shards:
            if shard in checkpoints.finished:
                continue
            after = checkpoints.positions.get(shard)
            if after is not None:
                applied += filter(None, [self._time_at(arn, shard, after)])
            for record in self._records(arn, shard, after):
                pending += 1
                waiting += filter(None, [_time(record)])
                if pending >= MAX_COUNTED:
                    capped = True
                    break
        last = max(applied, default=None)
        if not waiting:
            return Position(0.0, pending, last, last, capped)
        head = max(waiting)
        # Nothing applied yet: behind by as long as the oldest waiting event has been in the log.
        lag = (head - (last if last is not None else min(waiting))).total_seconds()
        return Position(max(0.0, lag), pending, head, last, capped)

    def _shards(self, arn: str) -> list[str]:
        shards: list[str] = []
        request: dict[str, Any] = {"StreamArn": arn}
        while True:
            description = self._streams.describe_stream(**request)["StreamDescription"]
            shards += [shard["ShardId"] for shard in description.get("Shards", [])]
            if not description.get("LastEvaluatedShardId"):
                return shards
            request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def _iterator(self, arn: str, shard: str, kind: str, sequence: str | None) -> str | None:
        request = {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind}
        if sequence is not None:
            request["SequenceNumber"] = sequence
        try:
            return self._streams.get_shard_iterator(**request)["ShardIterator"]
        except self._streams.exceptions.TrimmedDataAccessException:
            return None

    def _time_at(self, arn: str, shard: str, sequence: str) -> datetime | None:
        """The time of the record at ``sequence`` (the last one applied); None once trimmed."""
        iterator = self._iterator(arn, shard, "AT_SEQUENCE_NUMBER", sequence)
        records = self._streams.get_records(ShardIterator=iterator, Limit=1)["Records"] if iterator else []
        return _time(records[0]) if records else None

    def _records(self, arn: str, shard: str, after: str | None) -> Iterator[dict[str, Any]]:
        """The shard's records after ``after`` (from its start without one), until a read comes back empty."""
        iterator = (self._iterator(arn, shard, "AFTER_SEQUENCE_NUMBER", after) if after is not None
                    else self._iterator(arn, shard, "TRIM_HORIZON", None))
        while iterator:
            page = self._streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
            if not page["Records"]:
                return
            yield from page["Records"]
            iterator = page.get("NextShardIterator")

    def _queue_position(self, now: datetime) -> Position:
        waiting = self.failure_queue.waiting()
        if not waiting:
            return Position(0.0, 0)
        sent = [parse_time(message.sent_at) for message in waiting]
        return Position(max(0.0, (now - min(sent)).total_seconds()), len(waiting), max(sent), None)
