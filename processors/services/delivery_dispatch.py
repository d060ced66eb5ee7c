"""The reactor's delivery rule: what each delivery event asks of the outside world.

- ``message received`` -> a job for attempt 1;
- ``retry scheduled`` -> a job for the next attempt, delayed until ``next_retry_at``;
- ``redrive requested`` -> a job for the attempt it made due, at once;
- ``dead-lettered`` -> the message goes to the dead-letter queue;
- an attempt answered 410 Gone -> ``target disabled`` in the target's stream.

Only the reactor (a stream reader) calls this, so rebuilds and replays, which read the table,
never send anything. Effects are at least once and safe to repeat: the worker re-checks the log
before every attempt, and the target event is appended under the cause event's id.
"""

from __future__ import annotations


from events.deliveries import (
    DeadLettered, DeliveryAttempted, MessageReceived, RedriveRequested, RetryScheduled, TargetDisabled,
)
from events.delivery_policy import TARGET_DISABLED, disables_target, target_stream
from events.envelope import NewEvent, RecordedEvent
from events.ports import EventLog
from events.store import ANY
from processors.adapters.clock import Clock
from processors.adapters.dead_letters import DeadLetterSink, dead_letter_message
from processors.adapters.delivery_queue import DeliveryJob, DeliveryQueue
from processors.telemetry.logs import make_logger

SOURCE = "urn:dynafold:reactor"
logger = make_logger("reactor", child=True)


class DeliveryDispatch:
    def __init__(self, store: EventLog, queue: DeliveryQueue, dead_letters: DeadLetterSink, clock: Clock) -> None:
        self._store = store
        self._queue = queue
        self._dead_letters = dead_letters
        self._clock = clock

    def __call__(self, event: RecordedEvent) -> None:
        data = event.data
        if isinstance(data, MessageReceived):
            self._enqueue(event, attempt=1, delay_seconds=0.0)
        elif isinstance(data, RetryScheduled):
            delay = (data.next_retry_at - self._clock.now()).total_seconds()
            self._enqueue(event, attempt=data.attempt + 1, delay_seconds=max(0.0, delay))
        elif isinstance(data, RedriveRequested):
            self._enqueue(event, attempt=data.attempt, delay_seconds=0.0)
        elif isinstance(data, DeadLettered):
            received, _ = self._message(event.stream)
            self._dead_letters.send(dead_letter_message(received, event))
            logger.info("dead letter sent", extra={"delivery_stream": event.stream, "reason": data.reason})
        elif isinstance(data, DeliveryAttempted) and disables_target(data):
            self._disable_target(event, data)

    def _enqueue(self, cause: RecordedEvent, attempt: int, delay_seconds: float) -> None:
        job = DeliveryJob(stream=cause.stream, attempt=attempt, cause_event_id=cause.id,
                          correlation_id=cause.correlation_id)
        self._queue.send(job, delay_seconds)
        logger.info("delivery job enqueued", extra={"delivery_stream": cause.stream, "attempt": attempt,
                                                    "delay_seconds": round(delay_seconds, 3)})

    def _disable_target(self, cause: RecordedEvent, attempted: DeliveryAttempted) -> None:
        url = self._message(cause.stream)[1].target_url
        disabled = TargetDisabled(target_url=url, status_code=attempted.status_code, cause_stream=cause.stream,
                                  reason=f"HTTP {attempted.status_code} on attempt {attempted.attempt}")
        stream = target_stream(url)
        new = NewEvent(TARGET_DISABLED, disabled, source=SOURCE, correlation_id=cause.correlation_id,
                       causation_id=cause.id)
        self._store.append(stream, [new], ANY, idempotency_key=f"target-disabled:{cause.id}")
        logger.warning("webhook target disabled", extra={"target_stream": stream, "status_code": attempted.status_code})

    def _message(self, delivery_stream: str) -> tuple[RecordedEvent, MessageReceived]:
        """The delivery's ``message received`` event (the first of its stream) and its data."""
        first = self._store.read_stream(delivery_stream, 1, 1)
        if not first or not isinstance(first[0].data, MessageReceived):
            raise LookupError(f"{delivery_stream} does not start with a message_received event")
        return first[0], first[0].data
