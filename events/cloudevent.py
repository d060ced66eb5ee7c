"""Stored events <-> CloudEvents JSON lines, through the cloudevents 2.x SDK. Pure.

An exported line is exactly what the SDK writes for the event, so the SDK reads it back and
writes it again unchanged. The line carries the event as the log stored it: the stored type
(an old version stays old), the data object whose canonical JSON is the stored data text, the
stored time; ``subject`` is the stream and ``streamversion`` (our own extension attribute) the
version in that stream. Not CloudEvents' ``sequence`` extension: that orders the events of one
``source``, and a source writes to many streams. Lines exported before carry ``sequence`` and
still parse. Importing a line gives back the stored form byte for byte (``StoredEvent``).

Each line also carries its link of the stream's hash chain, ``hash`` and ``prevhash`` (extension
attributes too: CloudEvents names are lower-case a-z/0-9), so an export proves itself: the hash
recomputes from the line and its predecessor's hash (``events.export_chain``). Lines exported
before the chain was carried have neither and cannot be verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from events.envelope import DATA_CONTENT_TYPE, StoredEvent, canonical_json, format_sequence, format_time, parse_time
from events.errors import DynafoldError
from events.items import Item, chained_item

_FORMAT = JSONFormat()
STREAM_VERSION = "streamversion"  # CloudEvents naming: lower-case a-z/0-9, at most 20 characters
_LEGACY_STREAM_VERSION = "sequence"  # what exports used before
HASH, PREV_HASH = "hash", "prevhash"  # the event's chain link: its hash and its predecessor's


class NotExportable(DynafoldError):
    """A stored event whose data or time is not in the canonical form, so no line could give it back."""


class InvalidCloudEvent(DynafoldError):
    pass


def to_line(item: Item) -> str:
    """One stored item as a CloudEvents JSON line (no trailing newline)."""
    stream, version = item["stream"]["S"], int(item["version"]["N"])
    data_text, time_text = item["data"]["S"], item["time"]["S"]
    data = json.loads(data_text)
    if canonical_json(data) != data_text:
        raise NotExportable(f"{stream} v{version}: stored data is not canonical JSON; it would not import unchanged")
    moment = parse_time(time_text)
    if format_time(moment) != time_text:
        raise NotExportable(f"{stream} v{version}: stored time {time_text!r} is not in the store's form")
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": item["id"]["S"],
        "source": item["source"]["S"],
        "type": item["type"]["S"],
        "subject": stream,
        "time": moment,
        "datacontenttype": DATA_CONTENT_TYPE,
        STREAM_VERSION: format_sequence(version),
        "correlationid": item["correlation_id"]["S"],
        HASH: item["hash"]["S"],
        PREV_HASH: item["prev_hash"]["S"],
    }
    if "causation_id" in item:
        attributes["causationid"] = item["causation_id"]["S"]
    return _FORMAT.write(CloudEvent(attributes, data)).decode("utf-8")


def read_line(line: str) -> CloudEvent:
    try:
        event = _FORMAT.read(None, line)
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise InvalidCloudEvent(f"not a CloudEvents JSON event: {error}") from None
    if not isinstance(event, CloudEvent):  # the SDK picks the class by specversion (0.3 reads too)
        raise InvalidCloudEvent(f"specversion {event.get_specversion()!r}: only CloudEvents 1.0 is imported")
    return event


@dataclass(frozen=True, slots=True)
class ExportedEvent:
    """One exported line: where the event was in the source log, its stored form, and the chain
    link the line claims (``None`` on lines exported before exports carried it)."""

    stream: str
    version: int
    stored: StoredEvent
    hash: str | None
    prev_hash: str | None

    def recomputed_hash(self) -> str | None:
        """The hash this line's content gives after its claimed predecessor's hash: equal to
        ``hash`` unless the line was altered."""
        if self.prev_hash is None:
            return None
        return str(chained_item(self.stream, self.version, self.stored, self.prev_hash)["hash"]["S"])


def from_line(line: str) -> ExportedEvent:
    """An exported line: the stream and version in the source log, the stored form, the chain link."""
    event = read_line(line)
    stream, time, data = event.get_subject(), event.get_time(), event.get_data()
    if not stream:
        raise InvalidCloudEvent(f"event {event.get_id()}: no subject (the stream)")
    if time is None or time.tzinfo is None:
        raise InvalidCloudEvent(f"event {event.get_id()}: no time with a time zone")
    if not isinstance(data, dict):
        raise InvalidCloudEvent(f"event {event.get_id()}: data must be a JSON object")
    if (event.get_datacontenttype() or DATA_CONTENT_TYPE) != DATA_CONTENT_TYPE:
        raise InvalidCloudEvent(f"event {event.get_id()}: datacontenttype must be {DATA_CONTENT_TYPE}")
    name = STREAM_VERSION if event.get_extension(STREAM_VERSION) is not None else _LEGACY_STREAM_VERSION
    sequence = str(event.get_extension(name) or "0")
    if not (sequence.isascii() and sequence.isdigit()):
        raise InvalidCloudEvent(f"event {event.get_id()}: {name} {sequence!r} is not a number")
    stored = StoredEvent(
        type=event.get_type(),
        data_text=canonical_json(data),
        id=event.get_id(),
        source=event.get_source(),
        time_text=format_time(time),
        correlation_id=str(event.get_extension("correlationid") or event.get_id()),
        causation_id=event.get_extension("causationid"),
    )
    return ExportedEvent(stream, int(sequence), stored, _text(event, HASH), _text(event, PREV_HASH))


def _text(event: CloudEvent, name: str) -> str | None:
    value = event.get_extension(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidCloudEvent(f"event {event.get_id()}: {name} must be a string")
    return value
