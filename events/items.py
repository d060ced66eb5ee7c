"""The event table's item shape (DynamoDB low-level attribute values) <-> RecordedEvent.

Pure mapping, shared by the event store and by stream consumers decoding a record's NewImage,
so both read an event the same way.
"""

from __future__ import annotations

from typing import Any

from events import catalogue
from events.envelope import RecordedEvent, StoredEvent, format_time, link_hash, parse_time
from events.sharding import ShardedKey

Item = dict[str, dict[str, Any]]

# DynamoDB counts attribute names and values; 400 KB is the hard item limit.
MAX_ITEM_BYTES = 400 * 1024

# The audit search's index (template.yaml ``by-type-shard-time``): "<stored type>#<bucket>", the bucket
# from the event's own key (stream, version). An event type takes a large share of all appends (the
# seeds' stock changes: 30%), more than one partition key value takes at 10,000 events/s; 16 buckets
# keep the hottest type under a fifth of the limit (`dynafold cost --rate 10000`). Only ever raised:
# events are immutable, so an event keeps the bucket it was appended with. Not part of the hash:
# it is derived from hashed fields (type, stream, version), so whoever reads an event can check it.
TYPE_INDEX = ShardedKey("by-type-shard-time", "type_shard", "time", buckets=16)


def type_shard(stored_type: str, stream: str, version: int) -> str:
    return TYPE_INDEX.value(stored_type, (stream, str(version)))


def to_item(event: RecordedEvent) -> Item:
    item: Item = {
        "stream": {"S": event.stream},
        "version": {"N": str(event.version)},
        "id": {"S": event.id},
        "type": {"S": event.stored_type or event.type},
        "type_shard": {"S": type_shard(event.stored_type or event.type, event.stream, event.version)},
        "source": {"S": event.source},
        "time": {"S": format_time(event.time)},
        "data": {"S": event.data_json},
        "correlation_id": {"S": event.correlation_id},
        "prev_hash": {"S": event.prev_hash},
        "hash": {"S": event.hash},
    }
    if event.causation_id:
        item["causation_id"] = {"S": event.causation_id}
    return item


def chained_item(stream: str, version: int, event: StoredEvent, prev_hash: str) -> Item:
    """The item of ``event`` at ``version`` of ``stream``, linked to the previous event's hash."""
    item: Item = {
        "stream": {"S": stream},
        "version": {"N": str(version)},
        "id": {"S": event.id},
        "type": {"S": event.type},
        "type_shard": {"S": type_shard(event.type, stream, version)},
        "source": {"S": event.source},
        "time": {"S": event.time_text},
        "data": {"S": event.data_text},
        "correlation_id": {"S": event.correlation_id},
        "prev_hash": {"S": prev_hash},
    }
    if event.causation_id:
        item["causation_id"] = {"S": event.causation_id}
    item["hash"] = {"S": recompute_hash(item)}
    return item


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (an ASCII string's length, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def item_size(item: Item) -> int:
    """DynamoDB's size rule for the attribute types this table uses (S and N)."""
    size = 0
    for name, value in item.items():
        size += utf8_length(name)
        if "S" in value:
            size += utf8_length(value["S"])
        elif "N" in value:
            digits = value["N"].lstrip("-").replace(".", "")
            size += (len(digits) + 1) // 2 + 1
        else:  # not produced by to_item; count generously
            size += len(repr(value).encode("utf-8"))
    return size


def from_item(item: Item) -> RecordedEvent:
    """Decode a stored item (upcasting old types). Raises catalogue errors on undecodable data."""
    stored_type = item["type"]["S"]
    data_text = item["data"]["S"]
    current_type, data = catalogue.decode(stored_type, data_text)
    causation = item.get("causation_id")
    return RecordedEvent(
        stream=item["stream"]["S"],
        version=int(item["version"]["N"]),
        id=item["id"]["S"],
        type=current_type,
        source=item["source"]["S"],
        time=parse_time(item["time"]["S"]),
        data=data,
        correlation_id=item["correlation_id"]["S"],
        causation_id=causation["S"] if causation else None,
        prev_hash=item["prev_hash"]["S"],
        hash=item["hash"]["S"],
        stored_type=stored_type,
        data_json=data_text,
    )


def recompute_hash(item: Item) -> str:
    """The hash an item should carry given its own stored fields and its stored prev_hash."""
    causation = item.get("causation_id")
    return link_hash(
        prev_hash=item["prev_hash"]["S"],
        stream=item["stream"]["S"],
        version=int(item["version"]["N"]),
        event_id=item["id"]["S"],
        stored_type=item["type"]["S"],
        source=item["source"]["S"],
        time_text=item["time"]["S"],
        data_text=item["data"]["S"],
        correlation_id=item["correlation_id"]["S"],
        causation_id=causation["S"] if causation else None,
    )
