"""`dynafold explain delivery` and `GET /messages/{message_id}/explanation`: one webhook delivery's story.

A delivery is named by its id (``<sender>:<message>``) or by its message id alone when one sender
used it (the delivery-status view's by-message index); the words come from
``projections.delivery_status.explain``, with the retry policy the workers run with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from events.deliveries import TargetDisabled
from events.delivery_policy import RetryPolicy, disabled_by, target_stream
from events.envelope import RecordedEvent
from events.errors import InvalidStreamId, NotFound
from events.ports import EventLog
from events.deliveries import MessageReceived
from projections.delivery_status.explain import explain_delivery
from projections.explanation import Explanation
from projections.queries import ViewQueries
from projections.unit import InvalidQuery


class DeliveryExplainer:
    def __init__(self, store: EventLog, queries: ViewQueries, policy: RetryPolicy, timeout_seconds: float,
                 clock: Callable[[], datetime]) -> None:
        self._store = store
        self._queries = queries
        self._policy = policy
        self._timeout = timeout_seconds
        self._clock = clock

    def stream(self, ref: str, sender_id: str | None = None) -> str:
        """The delivery stream of ``ref``: a delivery id, or a message id (of ``sender_id``, when given)."""
        ref = ref.strip()
        if not ref:
            raise InvalidQuery("give a delivery id (<sender>:<message>) or a message id")
        if ":" in ref or sender_id:  # message ids have no ':' (POST /messages refuses it)
            return f"delivery:{ref}" if ":" in ref else f"delivery:{sender_id}:{ref}"
        found = self._queries.delivery_status.by_message(ref)
        if len(found) > 1:
            ids = ", ".join(d.delivery_id for d in found)
            raise InvalidQuery(f"message {ref!r} was sent by {len(found)} senders ({ids}): give the delivery id")
        if not found:
            raise NotFound(f"delivery {ref!r} (no message with this id, and no delivery id <sender>:<message>)")
        return f"delivery:{found[0].delivery_id}"

    def history(self, ref: str, sender_id: str | None = None) -> tuple[list[RecordedEvent], TargetDisabled | None]:
        """The delivery's events (never empty) and its target's disabling, if in force."""
        stream = self.stream(ref, sender_id)
        try:
            events = self._store.read_stream(stream)
        except InvalidStreamId:
            events = []
        if not events or not isinstance(events[0].data, MessageReceived):
            raise NotFound(f"delivery {stream.split(':', 1)[1]!r}")
        return events, disabled_by(self._store.read_stream(target_stream(events[0].data.target_url)))

    def explain(self, ref: str, sender_id: str | None = None) -> Explanation:
        events, disabled = self.history(ref, sender_id)
        return explain_delivery(events, disabled, self._policy, self._timeout, self._clock())
