"""ReactorFunction: the second (and last) reader of the event stream, running the side-effect rules.

Thin: the partial-batch shape (processors/telemetry/lambda_batch.py) around
``services.reactor.Reactor``, which the composition root builds. Every effect is an append keyed
by its cause, so redelivered records change nothing.
"""

from __future__ import annotations

from events.items import from_item
from processors.services.reactor import Reactor, logger, metrics
from processors.telemetry.lambda_batch import Handler, Record, partial_batch_handler, stream_sequence_number


def make_handler(reactor: Reactor) -> Handler:
    def record_handler(record: Record) -> None:
        event = from_item(record["dynamodb"]["NewImage"])
        # The request the event belongs to: `dynafold logs --correlation` follows it across functions.
        logger.append_keys(correlation_id=event.correlation_id, event_id=event.id)
        for alert in reactor.react(event):
            logger.info("alert raised", extra={"alert_type": alert.alert_type, "severity": alert.severity,
                                               "alert_id": alert.alert_id})

    return partial_batch_handler(stream_sequence_number, record_handler, logger, metrics, "RecordsReacted")
