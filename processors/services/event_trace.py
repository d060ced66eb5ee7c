"""The trace read service: what an event caused and what caused it, or what one request caused.

Served by the event table's indexes, never a scan: the asked event by ``by-id``; its causes one
``by-id`` lookup each, up to the event that came in from outside; its effects and the rest of its
request by ``by-correlation``, since every derived event keeps its cause's correlation (a test on
the demo's traffic holds every function to that). The CLI (`dynafold audit trace`) and the HTTP
route (`GET /trace/{id}`) both ask the one the composition root builds.
"""

from __future__ import annotations

from events.envelope import RecordedEvent
from events.errors import DynafoldError, NotFound
from events.items import from_item
from events.log_index import EventIndex
from projections.causation import explain_trace, trace_nodes
from projections.explanation import Explanation

MAX_ID_BYTES = 2048  # an index key's limit: a longer id is no id of this log
MAX_CAUSES = 100  # causation hops followed upwards (a cycle, which appends cannot make, ends too)
MAX_EVENTS = 1000  # events of one request shown; the answer says when there were more


class InvalidTraceId(DynafoldError):
    pass


def check_trace_id(text: str) -> str:
    if not text or not text.strip():
        raise InvalidTraceId("give an event id or a correlation id (it was empty)")
    if len(text.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidTraceId(f"an id has at most {MAX_ID_BYTES} bytes; this one has {len(text.encode('utf-8'))}")
    return text


def event_trace(client: object, events_table: str) -> "EventTrace":
    """The service over one DynamoDB client and the event table (its indexes)."""
    return EventTrace(EventIndex(client, events_table))


class EventTrace:
    def __init__(self, index: EventIndex) -> None:
        self._index = index

    def __call__(self, asked_id: str) -> Explanation:
        """The trace of an event id, else of a correlation id; NotFound when the log has neither."""
        check_trace_id(asked_id)
        found = self._event(asked_id)
        if found is None:
            group, truncated = self._request(asked_id)
            if not group:
                raise NotFound(f"no event and no request with id {asked_id!r}")
            return explain_trace(asked_id, trace_nodes(group), truncated)
        causes = self._causes(found)
        root = causes[-1] if causes else found
        group, truncated = self._request(root.correlation_id)
        if found.correlation_id != root.correlation_id:  # a cause from another request (an old event)
            more, cut = self._request(found.correlation_id)
            group, truncated = group + more, truncated or cut
        return explain_trace(asked_id, trace_nodes([*group, *causes, found], found), truncated)

    def _event(self, event_id: str) -> RecordedEvent | None:
        items = self._index.by_id(event_id)
        return from_item(items[0]) if items else None

    def _causes(self, event: RecordedEvent) -> list[RecordedEvent]:
        """The event's cause, its cause's cause, ... nearest first, as far as the log has them."""
        chain: list[RecordedEvent] = []
        seen = {event.id}
        while event.causation_id and event.causation_id not in seen and len(chain) < MAX_CAUSES:
            cause = self._event(event.causation_id)
            if cause is None:
                break
            chain.append(cause)
            seen.add(cause.id)
            event = cause
        return chain

    def _request(self, correlation_id: str) -> tuple[list[RecordedEvent], bool]:
        """The request's events in time order (at most MAX_EVENTS), and whether there were more."""
        events: list[RecordedEvent] = []
        for item in self._index.all_pages(lambda token: self._index.by_correlation(correlation_id, token=token)):
            if len(events) == MAX_EVENTS:
                return events, True
            events.append(from_item(item))
        return events, False
