"""ReactorFunction: the second (and last) reader of the event stream, running the side-effect rules.

Thin: the Powertools batch shape around ``services.reactor.Reactor``, which the composition root
builds. Every effect is an append keyed by its cause, so redelivered records change nothing.
"""

from __future__ import annotations


from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from events.items import from_item
from processors.services.reactor import Reactor, logger, metrics
from processors.telemetry.lambda_batch import Handler, partial_batch_handler


def make_handler(reactor: Reactor) -> Handler:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

    def record_handler(record: DynamoDBRecord) -> None:
        event = from_item(record.raw_event["dynamodb"]["NewImage"])
        # The request the event belongs to: `dynafold logs --correlation` follows it across functions.
        logger.append_keys(correlation_id=event.correlation_id, event_id=event.id)
        for alert in reactor.react(event):
            logger.info("alert raised", extra={"alert_type": alert.alert_type, "severity": alert.severity,
                                               "alert_id": alert.alert_id})

    return partial_batch_handler(processor, record_handler, logger, metrics, "RecordsReacted")
