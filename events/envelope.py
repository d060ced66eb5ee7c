"""The event envelope: what callers append, what the log holds, and its hash-chain link.

Pure: no I/O. The stored form (``events.items``) and the CloudEvents form
(``events.cloudevent``) are both derived from ``RecordedEvent``.
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring as _json_string  # a str as json.dumps(ensure_ascii=False) writes it
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from pydantic import BaseModel

GENESIS_HASH = "0" * 64
DATA_CONTENT_TYPE = "application/json"
SEQUENCE_WIDTH = 20  # zero-padded so `sequence` sorts as a string


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for stored data and hashes: sorted keys, no spaces, UTF-8.

    CPython writes ASCII-only JSON about three times faster than with ``ensure_ascii=False``, and
    the two spellings differ only where a character is written as a ``\\u`` escape; without one, the
    ASCII text is the canonical text (a property test holds them equal)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if "\\u" not in text:
        return text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def data_json(data: BaseModel) -> str:
    return canonical_json(data.model_dump(mode="json"))


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def format_sequence(version: int) -> str:
    return str(version).zfill(SEQUENCE_WIDTH)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a caller wants appended. Id, time and correlation are filled in when missing."""

    type: str
    data: Mapping[str, Any] | BaseModel
    id: str | None = None
    source: str = "urn:dynafold:cli"
    time: datetime | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


class Cause(Protocol):
    """What a derived event keeps of the event it follows from: that event's id (the derived
    event's causation) and its correlation (the request both belong to), so a trace leads from a
    request to everything it caused and back. A ``RecordedEvent`` is one; so is a ``CauseRef``."""

    @property
    def id(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CauseRef:
    """A cause known by its id and correlation only (an event just appended, a stream record)."""

    id: str
    correlation_id: str


@dataclass(frozen=True, slots=True)
class PlannedAppend:
    """One append a decision asks for: events for one stream, guarded by an idempotency key."""

    stream: str
    events: tuple[NewEvent, ...]
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event in its stored form before it has a place in a stream (version, chain links).

    ``type`` and ``data_text`` are what is written and hashed: the stored type (an old version
    stays old) and the canonical data JSON.
    """

    type: str
    data_text: str
    id: str
    source: str
    time_text: str
    correlation_id: str
    causation_id: str | None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the log holds it.

    ``stored_type`` and ``data_json`` are exactly what was written (and what the hash covers);
    ``type`` and ``data`` are the current-version view after upcasting.
    """

    stream: str
    version: int
    id: str
    type: str
    source: str
    time: datetime
    data: BaseModel
    correlation_id: str
    causation_id: str | None
    prev_hash: str
    hash: str
    stored_type: str = ""
    data_json: str = field(default="", repr=False)

    @property
    def sequence(self) -> str:
        return format_sequence(self.version)

    def to_json(self) -> dict[str, Any]:
        """A plain JSON view for CLIs and APIs (CloudEvents attribute names)."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.stream,
            "time": format_time(self.time),
            "datacontenttype": DATA_CONTENT_TYPE,
            "sequence": self.sequence,
            "correlationid": self.correlation_id,
            **({"causationid": self.causation_id} if self.causation_id else {}),
            "data": self.data.model_dump(mode="json"),
        }


def link_hash(
    *,
    prev_hash: str,
    stream: str,
    version: int,
    event_id: str,
    stored_type: str,
    source: str,
    time_text: str,
    data_text: str,
    correlation_id: str,
    causation_id: str | None,
) -> str:
    """hash = sha256(prev_hash || canonical bytes of the event): one link of a stream's chain.

    The canonical bytes are ``canonical_json`` of the event's CloudEvents attributes, written out
    here in its key order: the same text (a test holds them equal) in a quarter of the time, as
    every append hashes each of its events."""
    text = _json_string
    canonical = (
        '{"causationid":' + ("null" if causation_id is None else text(causation_id))
        + ',"correlationid":' + text(correlation_id)
        + ',"data":' + text(data_text)
        + ',"datacontenttype":' + text(DATA_CONTENT_TYPE)
        + ',"id":' + text(event_id)
        + ',"sequence":' + text(format_sequence(version))
        + ',"source":' + text(source)
        + ',"subject":' + text(stream)
        + ',"time":' + text(time_text)
        + ',"type":' + text(stored_type)
        + "}"
    )
    return hashlib.sha256(prev_hash.encode("ascii") + canonical.encode("utf-8")).hexdigest()
