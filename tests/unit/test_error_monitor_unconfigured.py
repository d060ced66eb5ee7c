"""The error monitor as deployed with the shipped samconfig: no NotificationEmail / SenderEmail (issue 13 §3).

Wired by the AWS composition root from a Lambda-shaped environment without the two email settings,
on moto's DynamoDB. It must not crash: it claims, raises one `notification_unconfigured` alert
instead of emailing, records the notice as given through the alert channel, and says why in its log.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from events.envelope import NewEvent
from events.order_rules import Order, validate_order
from processors.adapters.mailers import MailUnconfigured, SesMailer, mailer_from_env
from processors.local.stream_runner import LambdaContext
from processors.operations.tables import TableNames, create_tables
from processors.wiring.aws import aws_root
from projections.batch import Entry

# What an EventBridge schedule sends (the only event the monitor acts on).
SCHEDULED = {"id": "schedule", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

NAMES = TableNames.with_prefix("dynafold-")
ENV = {
    "EVENTS_TABLE": NAMES.events, "IDEMPOTENCY_TABLE": NAMES.idempotency, "CHECKPOINTS_TABLE": NAMES.checkpoints,
    "KEYS_TABLE": NAMES["keys"],
    "VIEW_TABLES": json.dumps({"inventory": NAMES["inventory-v1"], "inventory-returns": NAMES["inventory-returns-v1"],
                               "pending-errors": NAMES["pending-errors-v1"],
                               "delivery-status": NAMES["delivery-status-v2"], "alerts": NAMES["alerts-v1"]}),
    "AWS_DEFAULT_REGION": "us-east-1",
    # What the template gives every function when the two parameters keep their "" defaults.
    "DYNAFOLD_NOTIFY_EMAIL": "", "DYNAFOLD_SENDER_EMAIL": "",
}
ORDER = {"order_id": "o-1", "order_number": "SO-1", "lines": [{"sku": "TUK-1", "discount_percent": 10}],
         "remarks": "ok"}


@pytest.fixture
def root(monkeypatch):
    for name in ("DYNAFOLD_NOTIFY_EMAIL", "DYNAFOLD_SENDER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), NAMES)
        # The order's remarks are sealed with a data key that moto's KMS generates and unwraps.
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        yield aws_root({**ENV, "PERSONAL_DATA_KEY_ID": key})


def expired_errors(root, order_id: str = "o-1") -> None:
    """An order validated with errors two hours ago, projected into the pending-errors view."""
    errors = [e.model_dump(mode="json") for e in validate_order(Order.model_validate(ORDER))]
    stream = f"order:{order_id}"
    root.store.append(stream, [NewEvent("dynafold.orders.validated.v1",
                                        {"order_id": order_id, "order_number": "SO-1", "errors": errors,
                                         "order": ORDER}, time=datetime.now(timezone.utc) - timedelta(hours=2))])
    events = root.store.read_stream(stream)
    outcome = root.projector.project([Entry(str(e.version), stream, e) for e in events])
    assert not outcome.failed_sequence_numbers


def alerts(root) -> list:
    return [e for e in root.store.read_all() if e.type == "dynafold.alerts.raised.v1"]


def context() -> LambdaContext:
    return LambdaContext.local("dynafold-dev-error-monitor", 60)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def monitor_log():
    lines = Lines()
    logging.getLogger("error-monitor").addHandler(lines)  # Powertools' Logger is the stdlib logger of its service
    yield lines
    logging.getLogger("error-monitor").removeHandler(lines)


def test_the_monitor_handler_builds_and_runs_without_email_settings(root, monitor_log):
    expired_errors(root)
    handler = root.handler("error-monitor")  # raised RuntimeError here before: every run crashed
    assert handler({**SCHEDULED, "id": "schedule-1"}, context()) == {"outcomes": {"notified": 1}}
    types = [e.type.split(".")[2] for e in root.store.read_stream("order:o-1")]
    assert types == ["validated", "notification_claimed", "errors_notified"]
    notified = root.store.read_stream("order:o-1")[-1].data
    [alert] = alerts(root)
    assert (notified.channel, notified.message_ref) == ("alert", alert.data.alert_id)
    assert alert.data.alert_type == "notification_unconfigured" and alert.data.subject == "order:o-1"
    assert "SO-1" in alert.data.message and "NotificationEmail" in alert.data.message
    [why] = [r for r in monitor_log.records if "not emailed" in r.getMessage()]
    assert "NotificationEmail" in why.getMessage() and why.levelno == logging.WARNING  # the log says why


def test_the_alert_given_instead_and_the_record_of_it_trace_back_to_the_order_validation(root):
    """Issue 19 §A5: the monitor appended with fresh correlations and no causation, so its notice
    could not be traced back to the InFlow request."""
    expired_errors(root)
    root.handler("error-monitor")(SCHEDULED, context())
    validated, claimed, notified = root.store.read_stream("order:o-1")
    [alert] = alerts(root)
    assert claimed.causation_id == validated.id and notified.causation_id == claimed.id
    assert alert.causation_id == claimed.id
    assert {claimed.correlation_id, notified.correlation_id, alert.correlation_id} == {validated.correlation_id}


def test_a_second_run_repeats_nothing(root):
    expired_errors(root)
    handler = root.handler("error-monitor")
    handler(SCHEDULED, context())
    # The view has not seen errors_notified yet (no projector here): the log says it is done.
    assert handler(SCHEDULED, context()) == {"outcomes": {"not_due": 1}}
    assert len(alerts(root)) == 1
    assert len(root.store.read_stream("order:o-1")) == 3


@pytest.mark.parametrize("settings,missing", [
    ({}, ["NotificationEmail", "SenderEmail"]),
    ({"DYNAFOLD_NOTIFY_EMAIL": " , "}, ["NotificationEmail", "SenderEmail"]),
    ({"DYNAFOLD_NOTIFY_EMAIL": "ops@example.com"}, ["SenderEmail"]),
    ({"DYNAFOLD_SENDER_EMAIL": "dynafold@example.com"}, ["NotificationEmail"]),
])
def test_missing_email_settings_are_named_not_raised(settings, missing):
    unconfigured = mailer_from_env(settings)
    assert isinstance(unconfigured, MailUnconfigured) and unconfigured.channel == "alert"
    assert [name for name in ("NotificationEmail", "SenderEmail") if name in unconfigured.reason] == missing


def test_both_email_settings_give_the_ses_mailer(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mailer = mailer_from_env({"DYNAFOLD_NOTIFY_EMAIL": "a@example.com, b@example.com",
                              "DYNAFOLD_SENDER_EMAIL": "dynafold@example.com"})
    assert isinstance(mailer, SesMailer) and mailer.channel == "email"
