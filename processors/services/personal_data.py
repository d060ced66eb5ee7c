"""Forgetting a data subject, and exporting what is held about one (GDPR; Shopify's privacy webhooks).

``forget`` is crypto-shredding, in an order that a crash and a rerun complete:
1. ``subject forgotten`` is appended to ``subject:<subject>`` (keyed by the subject's key id, so a
   rerun appends it once) naming the key and the streams that hold the subject's values;
2. the subject's key is destroyed (the erasure itself: every sealed copy, backups and exports
   included, is unreadable from here on);
3. ``values erased`` is appended to each of those streams whose view keeps personal values: the
   projector refolds that stream's rows from the log, where the values now read ``[erased]``, in
   stream order, so no row keeps one. A rebuild folds the same log and writes the same rows.
Nothing is rewritten: the hash chain covers the sealed bytes, so ``audit verify`` passes before and after.

``export`` reveals every value held for a subject (a data request), from the streams noted for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from events.appending import ANY, MAX_TRANSACTION_ITEMS, AppendResult
from events.envelope import CauseRef, NewEvent, PlannedAppend, RecordedEvent, format_time
from events.errors import DynafoldError, IdempotencyKeyReused, NotFound
from events.keyring import KeyRing
from events.personal import ERASED, Sealed, check_subject, personal_fields
from events.privacy import DataRequested, Requester, SubjectForgotten, ValuesErased, subject_stream
from events.sealing import PersonalDataLog
from events.shopify import plan_parts
from projections.view import View

SOURCE = "urn:dynafold:privacy"
FORGOTTEN, ERASED_TYPE = "dynafold.privacy.subject_forgotten.v1", "dynafold.privacy.values_erased.v1"
DATA_REQUESTED = "dynafold.privacy.data_requested.v1"


class InvalidSubject(DynafoldError):
    pass


def valid_subject(subject: str) -> str:
    try:
        return check_subject(subject)
    except ValueError as error:
        raise InvalidSubject(str(error)) from None


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a subject did (or, on a dry run, would do)."""

    subject: str
    key_id: str | None  # the key destroyed; None: the subject had none (already forgotten, or never held)
    streams: tuple[str, ...]  # every stream holding values sealed for the subject
    refolded: tuple[str, ...]  # those whose view rows are refolded
    dry_run: bool = False
    event: AppendResult | None = None  # the `subject forgotten` event

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "key_destroyed": self.key_id is not None, "key_id": self.key_id,
                "streams": list(self.streams), "refolded": list(self.refolded), "dry_run": self.dry_run,
                **({"event_id": self.event.event_ids[0], "event_stream": self.event.stream,
                    "deduplicated": self.event.deduplicated} if self.event else {})}


@dataclass(frozen=True)
class HeldValue:
    stream: str
    version: int
    event_id: str
    type: str
    time: str
    field: str
    value: Any  # the value, or "[erased]"

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "version": self.version, "event_id": self.event_id, "type": self.type,
                "time": self.time, "field": self.field, "value": self.value}


@dataclass(frozen=True)
class SubjectExport:
    """Every personal value held for a subject, as it reads now."""

    subject: str
    has_key: bool
    values: list[HeldValue] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "has_key": self.has_key,
                "erased": sum(1 for v in self.values if v.value == ERASED),
                "values": [v.to_json() for v in self.values]}


class PersonalData:
    def __init__(self, store: PersonalDataLog, keyring: KeyRing, views: Sequence[View[Any]]) -> None:
        self._store = store
        self._keyring = keyring
        self._personal_categories = frozenset(view.category for view in views if view.personal_data)

    def reveal(self, event: RecordedEvent) -> RecordedEvent:
        """The event as people see it: personal values, or ``[erased]`` (the console shows events so)."""
        return self._store.revealer.reveal(event)

    def forget(self, subject: str, reason: str, requested_by: Requester, *, dry_run: bool = False,
               request_ref: str | None = None, correlation_id: str | None = None,
               nothing_held_is_fine: bool = False) -> Forgotten:
        """Destroy the subject's key and refold the rows that kept its values (see the module).
        NotFound when nothing was ever held for it, unless ``nothing_held_is_fine`` (a Shopify
        request is recorded either way)."""
        valid_subject(subject)
        reason = reason.strip()
        if not reason:
            raise InvalidSubject("give a reason (the request it answers; never personal data)")
        keys = self._keyring.keys
        key = keys.find(subject)
        streams = tuple(keys.streams(subject))
        refold = tuple(s for s in streams if s.split(":", 1)[0] in self._personal_categories)
        kid = None if key is None else key.kid
        if key is None and not streams and not nothing_held_is_fine:
            raise NotFound(f"no personal data is held for {subject} (it has no key and no values)")
        planned = Forgotten(subject, kid, streams, refold, dry_run)
        if dry_run:
            return planned
        forgotten = SubjectForgotten(subject=subject, reason=reason, requested_by=requested_by, key_id=kid,
                                     streams=streams, request_ref=request_ref)
        event = NewEvent(FORGOTTEN, forgotten, source=SOURCE, correlation_id=correlation_id)
        guard = f"privacy:forget:{subject}:{kid or 'none'}" if request_ref is None else \
            f"privacy:{requested_by}:{request_ref}:{subject}"
        try:
            recorded = self._store.append(subject_stream(subject), [event], ANY, idempotency_key=guard)
        except IdempotencyKeyReused:  # recorded before (another reason, or streams noted since): complete that one
            recorded = self._store.recorded(guard) or self._store.append(
                subject_stream(subject), [event], ANY)
        keys.destroy(subject)
        self._keyring.forget(subject)
        cause = CauseRef(recorded.event_ids[0], correlation_id or recorded.event_ids[0])
        self._mark(subject, refold, cause, guard)
        return replace(planned, event=recorded)

    def _mark(self, subject: str, streams: Sequence[str], cause: CauseRef, guard: str) -> None:
        """``values erased`` in each stream, at its head, in parts of one transaction each."""
        plans = [PlannedAppend(stream, (NewEvent(ERASED_TYPE, ValuesErased(subject=subject), source=SOURCE,
                                                 correlation_id=cause.correlation_id, causation_id=cause.id),))
                 for stream in streams]
        if not plans:
            return
        for key, part in plan_parts(plans, f"{guard}#erased", MAX_TRANSACTION_ITEMS - 1):
            self._store.append_streams(part, key)

    def forget_kind(self, kind: str, reason: str, requested_by: Requester, request_ref: str | None = None,
                    correlation_id: str | None = None) -> list[Forgotten]:
        """Forget every subject of one kind (a shop's customers, on ``shop/redact``)."""
        return [self.forget(subject, reason, requested_by, request_ref=request_ref, correlation_id=correlation_id,
                            nothing_held_is_fine=True)
                for subject in self._keyring.keys.subjects(kind)]

    def export(self, subject: str) -> SubjectExport:
        """Every value sealed for ``subject``, revealed (``[erased]`` once its key is gone)."""
        valid_subject(subject)
        keys = self._keyring.keys
        held: list[HeldValue] = []
        for stream in keys.streams(subject):
            for event in self._store.log.read_stream(stream):
                mine = [name for name in personal_fields(type(event.data))
                        if isinstance(getattr(event.data, name), Sealed)
                        and getattr(event.data, name).subject == subject]
                if not mine:
                    continue
                revealed = self._store.revealer.reveal_data(stream, event.data)
                held += [HeldValue(stream, event.version, event.id, event.type, format_time(event.time), name,
                                   getattr(revealed, name)) for name in mine]
        return SubjectExport(subject, self._keyring.for_opening(subject) is not None, held)

    def record_request(self, subject: str, requested_by: Requester, request_ref: str | None,
                       orders: Sequence[str] = (), correlation_id: str | None = None) -> AppendResult:
        """A data request, kept in the subject's stream; the reactor alerts the operator to export it."""
        requested = DataRequested(subject=valid_subject(subject), requested_by=requested_by, request_ref=request_ref,
                                  orders_requested=tuple(orders))
        key = f"privacy:{requested_by}:{request_ref}:{subject}" if request_ref else None
        return self._store.append(subject_stream(subject), [NewEvent(DATA_REQUESTED, requested, source=SOURCE,
                                                                     correlation_id=correlation_id)],
                                  ANY, idempotency_key=key)
