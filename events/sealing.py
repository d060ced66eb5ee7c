"""Personal values sealed on append and revealed on read: a layer around any ``EventLog``.

``PersonalDataLog`` seals every personal field (``events.personal``) of what is appended with its
subject's key *before* handing the events to the log it wraps, so the log stores, hashes and
chains only sealed bytes: the hash chain covers the ciphertext, and destroying a key later
changes nothing stored (``audit verify`` passes before and after an erasure). Its reads reveal
the values again: the value, or ``[erased]`` once the subject's key is gone. Raw items
(``read_items``, scans, audits, exports) stay as stored: sealed.

``Revealer.reveal`` is the one function that turns a recorded event into what folds and people
see; the projector, the rebuild, the audit commands and the console all call it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from events import catalogue
from events.appending import ANY, AppendResult, ExpectedVersion
from events.chain import ChainReport, Witness
from events.checkpoints import Checkpoint
from events.cipher import open_sealed, seal
from events.envelope import NewEvent, PlannedAppend, RecordedEvent, StoredEvent, canonical_json
from events.items import Item
from events.keyring import KeyRing
from events.personal import ERASED, Sealed, associated_data, personal_fields
from events.ports import EventLog, ScanPage
from events.sharding import MergedPage
from events.stream_catalogue import StreamEntry


def _empty(value: Any) -> bool:
    return value in (None, "", {}, [])


class Revealer:
    """Seals and reveals personal values with the subjects' keys (one ``KeyRing``)."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def seal_event(self, stream: str, event: NewEvent) -> NewEvent:
        """``event`` with each plain personal value sealed for its subject, bound to ``stream``."""
        spec = catalogue.BY_TYPE.get(event.type)
        if spec is None or not personal_fields(spec.model):
            return event  # nothing personal (or not appendable: the log refuses it as before)
        data = catalogue.validate(event.type, event.data)
        updates: dict[str, Sealed] = {}
        for name, marker in personal_fields(spec.model).items():
            value = getattr(data, name)
            if isinstance(value, Sealed) or value == ERASED or _empty(value):
                continue  # already sealed, gone, or nothing to protect
            subject = marker.subject_of(dict(data))
            key = self.keys.for_sealing(subject, stream)
            plaintext = canonical_json(value).encode("utf-8")
            blob = seal(key, plaintext, associated_data(stream, name, subject, key.kid))
            updates[name] = Sealed(key.kid, blob, subject)
        return replace(event, data=data.model_copy(update=updates)) if updates else replace(event, data=data)

    def reveal_data(self, stream: str, data: BaseModel) -> BaseModel:
        """``data`` with each sealed value opened, or ``[erased]`` where its key is gone."""
        fields = personal_fields(type(data))
        updates: dict[str, Any] = {}
        for name in fields:
            value = getattr(data, name)
            if not isinstance(value, Sealed):
                continue
            key = self.keys.for_opening(value.subject)
            if key is None or key.kid != value.kid:
                updates[name] = ERASED  # destroyed (a later key of the subject is another key)
                continue
            plaintext = open_sealed(key, value.blob, associated_data(stream, name, value.subject, key.kid))
            updates[name] = json.loads(plaintext)
        return data.model_copy(update=updates) if updates else data

    def reveal(self, event: RecordedEvent) -> RecordedEvent:
        """The event as folds and people see it; ``data_json`` (what the hash covers) stays sealed."""
        if not personal_fields(type(event.data)):
            return event
        data = self.reveal_data(event.stream, event.data)
        return event if data is event.data else replace(event, data=data)


def _as_stored(event: RecordedEvent) -> RecordedEvent:
    return event


def reveal_of(log: object) -> Callable[[RecordedEvent], RecordedEvent] | None:
    """How events stored in ``log`` are revealed (None: a log that seals nothing, e.g. in tests)."""
    return log.revealer.reveal if isinstance(log, PersonalDataLog) else None


class PersonalDataLog:
    """An ``EventLog`` whose appends seal personal values and whose event reads reveal them."""

    def __init__(self, log: EventLog, revealer: Revealer, *, reveal: bool = True) -> None:
        self.log = log
        self.revealer = revealer
        self._reveal = revealer.reveal if reveal else _as_stored

    @property
    def events_table(self) -> str:
        """The DynamoDB table of the wrapped store (scans and rebuilds read it directly)."""
        table = getattr(self.log, "events_table", None)
        if table is None:
            raise AttributeError("the wrapped log is not kept in a DynamoDB table")
        return str(table)

    def append(self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion = ANY,
               idempotency_key: str | None = None) -> AppendResult:
        sealed = [self.revealer.seal_event(stream, event) for event in events]
        return self.log.append(stream, sealed, expected_version, idempotency_key)

    def append_stored(self, stream: str, events: Sequence[StoredEvent], expected_version: ExpectedVersion = ANY,
                      idempotency_key: str | None = None) -> AppendResult:
        return self.log.append_stored(stream, events, expected_version, idempotency_key)  # as stored: sealed

    def append_streams(self, plans: Sequence[PlannedAppend], idempotency_key: str) -> list[AppendResult]:
        sealed = [replace(plan, events=tuple(self.revealer.seal_event(plan.stream, e) for e in plan.events))
                  for plan in plans]
        return self.log.append_streams(sealed, idempotency_key)

    def read_stream(self, stream: str, from_version: int = 1, to_version: int | None = None) -> list[RecordedEvent]:
        return [self._reveal(event) for event in self.log.read_stream(stream, from_version, to_version)]

    def read_items(self, stream: str, from_version: int = 1, to_version: int | None = None) -> Iterator[Item]:
        return self.log.read_items(stream, from_version, to_version)

    def scan_pages(self, total_segments: int, segments: Sequence[int] | None = None, *,
                   page_size: int | None = None, keys_only: bool = False) -> Iterator[ScanPage]:
        return self.log.scan_pages(total_segments, segments, page_size=page_size, keys_only=keys_only)

    def scan_items(self, segments: int = 4, page_size: int | None = None) -> Iterator[Item]:
        return self.log.scan_items(segments, page_size)

    def read_all(self, segments: int = 4) -> Iterator[RecordedEvent]:
        return (self._reveal(event) for event in self.log.read_all(segments))

    def stream_version(self, stream: str) -> int:
        return self.log.stream_version(stream)

    def recorded(self, key: str) -> AppendResult | None:
        return self.log.recorded(key)

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        return self.log.recorded_streams(key)

    def list_streams(self, category: str, limit: int = 50, token: str | None = None) -> MergedPage[StreamEntry]:
        return self.log.list_streams(category, limit, token)  # stream ids and times: never personal

    def seal(self, checkpoints: Sequence[Checkpoint]) -> dict[str, Exception]:
        return self.log.seal(checkpoints)  # the chain's checkpoints, not personal values

    def sealed_checkpoint(self, stream: str) -> Checkpoint | None:
        return self.log.sealed_checkpoint(stream)

    def sealed_checkpoints(self, segments: int = 4) -> dict[str, Checkpoint]:
        return self.log.sealed_checkpoints(segments)

    def recorded_head(self, stream: str) -> Witness | None:
        return self.log.recorded_head(stream)

    def recorded_heads(self, segments: int = 4) -> dict[str, Witness]:
        return self.log.recorded_heads(segments)

    def verify_stream(self, stream: str, also: Sequence[Witness] = ()) -> ChainReport:
        return self.log.verify_stream(stream, also)

    def verify_log(self, segments: int = 4,
                   also: Mapping[str, Sequence[Witness]] | None = None) -> Iterator[ChainReport]:
        return self.log.verify_log(segments, also)
