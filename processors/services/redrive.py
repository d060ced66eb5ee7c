"""Redrive: a dead-lettered webhook delivery tried again (or a scheduled retry run now), by appending.

`dynafold deliveries redrive ID|--dead-letters [--since T] [--dry-run]` and the admin routes
`POST /messages/{message_id}/redrive` and `POST /dead-letters/redrive` call this. Nothing is
edited: ``redrive requested`` is appended to the delivery's stream at the version read, under an
idempotency key naming the stream and that version (``projections.delivery_status.redrive``); the
delivery-status view folds it (a retry due now) and the reactor enqueues the attempt, on AWS and
locally alike. A delivered message, or one whose target is disabled (410 Gone), is refused with
the reason; a redrive already waiting for its attempt is not asked twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.delivery_policy import REDRIVE_REQUESTED
from events.envelope import NewEvent, RecordedEvent
from events.deliveries import TargetDisabled
from events.errors import DynafoldError, IdempotencyKeyReused, VersionConflict
from events.ports import EventLog
from processors.services.explain_deliveries import DeliveryExplainer
from projections.delivery_status import FAILED, MAX_RETRIES_EXCEEDED, DeliveryStatusProjection
from projections.delivery_status.redrive import RedrivePlan, plan_redrive, redrive_key
from projections.queries import ViewQueries
from projections.view import stream_key


class RedriveRefused(DynafoldError):
    """The delivery cannot be redriven as it stands (delivered, or its target disabled): HTTP 409."""

    def __init__(self, plan: RedrivePlan) -> None:
        super().__init__(f"delivery {plan.delivery_id}: not redriven: {plan.reason}")
        self.plan = plan


@dataclass(frozen=True)
class Redriven:
    """What one redrive did: its plan, and whether (and where) it appended."""

    plan: RedrivePlan
    appended: bool = False
    deduplicated: bool = False
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "appended": self.appended, "deduplicated": self.deduplicated,
                "version": self.version}


class Redriver:
    def __init__(self, store: EventLog, queries: ViewQueries, deliveries: DeliveryExplainer) -> None:
        self._store = store
        self._queries = queries
        self._deliveries = deliveries  # reads a delivery (and its target) as the explanation does

    def redrive(self, ref: str, *, sender_id: str | None = None, dry_run: bool = False,
                requested_by: str | None = None, reason: str | None = None,
                source: str = "urn:dynafold:cli") -> Redriven:
        """One delivery; RedriveRefused when it cannot be redriven, NotFound when it does not exist."""
        done = self._one(self._deliveries.stream(ref, sender_id), dry_run, requested_by, reason, source)
        if done.plan.outcome == "refused":
            raise RedriveRefused(done.plan)
        return done

    def redrive_dead_letters(self, since: str | None = None, *, dry_run: bool = False,
                             requested_by: str | None = None, reason: str | None = None,
                             source: str = "urn:dynafold:cli") -> list[Redriven]:
        """Every delivery dead-lettered (at or after ``since``), each on its own: a refused one (its
        target disabled) is listed with its reason and the others go ahead."""
        found = [d for status in (MAX_RETRIES_EXCEEDED, FAILED)
                 for d in self._queries.delivery_status.by_status(status, since=since)
                 if d.dead_letter_reason is not None]
        return [self._one(f"delivery:{d.delivery_id}", dry_run, requested_by, reason, source)
                for d in sorted(found, key=lambda d: d.delivery_id)]

    def _one(self, stream: str, dry_run: bool, requested_by: str | None, reason: str | None,
             source: str) -> Redriven:
        for _ in range(3):  # the delivery moved on while we read it: decide again on what it is now
            events, disabled = self._deliveries.history(stream_key(stream))
            plan = self._plan(events, disabled, requested_by, reason)
            if plan.event is None or dry_run:
                return Redriven(plan)
            version = events[-1].version
            new = NewEvent(REDRIVE_REQUESTED, plan.event, source=source, correlation_id=events[0].correlation_id,
                           causation_id=events[-1].id)  # what it redrives: the dead letter (or the schedule)
            try:
                result = self._store.append(stream, [new], version, idempotency_key=redrive_key(stream, version))
            except (VersionConflict, IdempotencyKeyReused):
                continue
            return Redriven(plan, appended=not result.deduplicated, deduplicated=result.deduplicated,
                            version=result.last_version)
        raise VersionConflict(stream, "a settled version", events[-1].version)

    @staticmethod
    def _plan(events: list[RecordedEvent], disabled: TargetDisabled | None, requested_by: str | None,
              reason: str | None) -> RedrivePlan:
        state = DeliveryStatusProjection.fold(stream_key(events[0].stream), events)
        return plan_redrive(state, disabled, requested_by=requested_by, reason=reason)
