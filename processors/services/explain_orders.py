"""`dynafold explain order` and `GET /orders/{order}/explanation`: one order's story, read from its stream.

The reference is an order id (its stream, read directly: the log is the authority and is never
behind) or an InFlow order number (the pending-errors view's by-order-number index, which keeps
an order after its errors are gone). The words come from ``projections.pending_errors.explain``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from events.envelope import RecordedEvent
from events.errors import InvalidStreamId, NotFound
from events.ports import EventLog
from projections.explanation import Explanation
from projections.pending_errors.explain import explain_order
from projections.queries import ViewQueries
from projections.unit import InvalidQuery


class OrderExplainer:
    def __init__(self, store: EventLog, queries: ViewQueries, grace: timedelta,
                 clock: Callable[[], datetime]) -> None:
        self._store = store
        self._queries = queries
        self._grace = grace
        self._clock = clock

    def history(self, ref: str) -> tuple[str, list[RecordedEvent]]:
        """(order id, its events) for an order id or an InFlow order number."""
        if not ref.strip():
            raise InvalidQuery("give an order number (e.g. SO-000019) or an order id")
        events = self._read(ref)
        if events:
            return ref, events
        ids = self._queries.pending_errors.order_ids(ref)
        if len(ids) > 1:
            raise InvalidQuery(f"order number {ref!r} names {len(ids)} orders ({', '.join(ids)}): give the id")
        events = self._read(ids[0]) if ids else []
        if not events:
            raise NotFound(f"order {ref!r} (no order has this id or InFlow order number)")
        return ids[0], events

    def explain(self, ref: str) -> Explanation:
        order_id, events = self.history(ref)
        return explain_order(order_id, events, self._grace, self._clock())

    def _read(self, order_id: str) -> list[RecordedEvent]:
        try:
            return self._store.read_stream(f"order:{order_id}")
        except InvalidStreamId:  # not an id at all (e.g. too long): maybe a number
            return []
