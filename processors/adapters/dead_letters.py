"""Where dead-lettered messages go: an SQS queue on AWS, a JSON Lines file in the local state dir
(``processors.local.queues.LocalDeadLetters``).

The message carries everything needed to look into or re-submit the delivery, including its
payload as the log keeps it: sealed (``sealed:1:...``; `dynafold read <delivery_stream>` reveals
it), so the queue holds no copy of personal data that an erasure could not reach, and the reactor
that sends it needs no key. Sends are at least once: a consumer that must not act twice keys on
``dead_lettered_event_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from events.deliveries import DeadLettered, MessageReceived
from events.envelope import RecordedEvent, format_time
from events.personal import Sealed
from processors.adapters.delivery_queue import SqsQueue

DEAD_LETTER_QUEUE_URL_ENV = "DELIVERY_DEAD_LETTER_QUEUE_URL"


def dead_letter_message(received: RecordedEvent, dead: RecordedEvent) -> dict[str, Any]:
    message, outcome = received.data, dead.data
    if not isinstance(message, MessageReceived) or not isinstance(outcome, DeadLettered):
        raise TypeError("a dead letter is built from a message_received and a dead_lettered event")
    return {
        "delivery_stream": dead.stream,
        "sender_id": message.sender_id,
        "message_id": message.message_id,
        "target_url": message.target_url,
        "payload": message.payload.token if isinstance(message.payload, Sealed) else message.payload,
        "attempts": outcome.attempts,
        "reason": outcome.reason,
        "dead_lettered_event_id": dead.id,
        "dead_lettered_at": format_time(dead.time),
        "correlation_id": dead.correlation_id,
    }


class DeadLetterSink(Protocol):
    def send(self, message: Mapping[str, Any]) -> None: ...


class SqsDeadLetters:
    def __init__(self, queue: SqsQueue) -> None:
        self.queue = queue

    def send(self, message: Mapping[str, Any]) -> None:
        self.queue.send_body(json.dumps(message, sort_keys=True))
