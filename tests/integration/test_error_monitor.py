"""The error monitor on DynamoDB Local with an injected clock: grace period, one email, races, failed sends."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from events.envelope import NewEvent
from events.order_rules import Order, validate_order
from processors.services.error_monitor import ErrorMonitor, MonitorSettings
from processors.local.stack import LocalStack
from processors.local.outbox import OutboxMailer, read_outbox
from processors.adapters.mailers import mailer_from_env
from processors.adapters.order_sources import LogOrderSource
from projections.queries import ViewQueries
from processors.local.tables import local_tables

T0 = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
DISCOUNTED = {"order_id": "o-1", "order_number": "SO-1", "lines": [{"sku": "TUK-1", "discount_percent": 10}],
              "remarks": "ok"}
FIXED = {**DISCOUNTED, "lines": [{"sku": "TUK-1", "discount_percent": 0}]}


class Harness:
    def __init__(self, local_dynamo, tmp_path):
        self.local_dynamo = local_dynamo
        self.tables = local_tables("test-", versions={})
        self.stack = LocalStack(local_dynamo.endpoint_url, self.tables, tmp_path, access_key=local_dynamo.access_key)
        self.outbox = tmp_path / "outbox.jsonl"

    def validated(self, order: dict, minutes: float) -> None:
        errors = [e.model_dump(mode="json") for e in validate_order(Order.model_validate(order))]
        self.stack.store.append(f"order:{order['order_id']}", [NewEvent(
            "dynafold.orders.validated.v1", {"order_id": order["order_id"], "order_number": order["order_number"],
                                             "errors": errors, "order": order}, time=T0 + timedelta(minutes=minutes))])
        self.stack.drain()

    def monitor(self, minutes: float, mailer=None, orders=None, client=None) -> ErrorMonitor:
        client = client or self.local_dynamo.client
        return ErrorMonitor(self.local_dynamo.store() if client is self.local_dynamo.client else
                            type(self.stack.store).over(client, self.tables),
                            ViewQueries(client, self.tables.views), orders or LogOrderSource(),
                            mailer or OutboxMailer(self.outbox), MonitorSettings(),
                            clock=lambda: T0 + timedelta(minutes=minutes))

    def types(self, order_id: str = "o-1") -> list[str]:
        return [e.type.split(".")[2] for e in self.stack.store.read_stream(f"order:{order_id}")]


@pytest.fixture
def harness(local_dynamo, tmp_path):
    return Harness(local_dynamo, tmp_path)


def test_errors_resolved_inside_the_grace_period_never_send_anything(harness):
    harness.validated(DISCOUNTED, 0)
    harness.validated(FIXED, 20)
    assert harness.monitor(31).run() == {}
    assert read_outbox(harness.outbox) == [] and harness.types() == ["validated", "validated"]


def test_nothing_is_sent_before_the_grace_period_is_over(harness):
    harness.validated(DISCOUNTED, 0)
    assert harness.monitor(29).run() == {}
    assert read_outbox(harness.outbox) == []


def test_an_unresolved_error_sends_exactly_one_email_and_leaves_the_view(harness):
    harness.validated(DISCOUNTED, 0)
    assert harness.monitor(31).run() == {"notified": 1}
    [email] = read_outbox(harness.outbox)
    assert email["subject"] == "Order SO-1: 1 unresolved error" and "discount_on_tuk_item" in email["body"]
    assert harness.types() == ["validated", "notification_claimed", "errors_notified"]
    harness.stack.drain()
    assert harness.monitor(36).run() == {} and len(read_outbox(harness.outbox)) == 1
    assert ViewQueries(harness.local_dynamo.client, harness.tables.views).pending_errors.all() == []
    alerts = [r for r in ViewQueries(harness.local_dynamo.client, harness.tables.views).alerts.find()]
    assert [a.alert_type for a in alerts] == ["order_errors_notified"]


def test_a_notified_error_resent_unchanged_or_touched_is_not_emailed_again(harness):
    """Issue 12 defect 2: the order re-sent (same body, or another field edited) while the error stays."""
    harness.validated(DISCOUNTED, 0)
    assert harness.monitor(31).run() == {"notified": 1}
    harness.stack.drain()
    harness.validated(DISCOUNTED, 40)
    harness.validated({**DISCOUNTED, "remarks": "edited"}, 60)
    for minutes in (71, 91, 96, 101, 106, 130):
        assert harness.monitor(minutes).run() == {}
    assert len(read_outbox(harness.outbox)) == 1


def test_an_error_fixed_then_reintroduced_gets_exactly_one_more_email(harness):
    """Issue 12 defect 2: the second episode's send is recorded (no reused key), its claim closes, no storm."""
    harness.validated(DISCOUNTED, 0)
    assert harness.monitor(31).run() == {"notified": 1}
    harness.stack.drain()
    harness.validated(FIXED, 40)
    harness.validated(DISCOUNTED, 50)
    assert harness.monitor(79).run() == {}  # its own grace period runs from 50
    assert harness.monitor(81).run() == {"notified": 1}
    harness.stack.drain()
    for minutes in (86, 91, 96, 101):
        assert harness.monitor(minutes).run() == {}
    assert len(read_outbox(harness.outbox)) == 2
    assert harness.types()[-2:] == ["notification_claimed", "errors_notified"]


def test_two_monitors_racing_send_one_email(harness):
    harness.validated(DISCOUNTED, 0)
    both_read = threading.Barrier(2, timeout=10)

    class SlowSource(LogOrderSource):
        def latest(self, order_id, history):
            both_read.wait()  # both monitors have read the same stream version before either claims
            return super().latest(order_id, history)

    monitors = [harness.monitor(31, orders=SlowSource(), client=harness.local_dynamo.new_client()) for _ in range(2)]
    results = []
    threads = [threading.Thread(target=lambda m=m: results.append(m.run())) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(tuple(r.items()) for r in results) == [(("lost_race", 1),), (("notified", 1),)]
    assert len(read_outbox(harness.outbox)) == 1


def test_a_failed_send_is_retried_on_the_next_run_and_sent_once(harness):
    harness.validated(DISCOUNTED, 0)

    class DownMailer:
        channel = "email"

        def send(self, subject, body):
            raise ConnectionError("SES unreachable")

    assert harness.monitor(31, mailer=DownMailer()).run() == {"send_failed": 1}
    assert harness.monitor(36).run() == {"notified": 1}
    assert harness.monitor(41).run() == {"not_due": 1}  # the view has not caught up yet; the log says done
    assert len(read_outbox(harness.outbox)) == 1
    assert harness.types()[:5] == ["validated", "notification_claimed", "notification_failed",
                                   "notification_claimed", "errors_notified"]
    claims = [e.data for e in harness.stack.store.read_stream("order:o-1") if e.type.endswith("claimed.v1")]
    assert [c.attempt for c in claims] == [1, 2] and claims[0].notification_id == claims[1].notification_id


def test_revalidation_drops_errors_fixed_at_the_source_without_an_email(harness):
    harness.validated(DISCOUNTED, 0)

    class InflowNow(LogOrderSource):  # the system of record already has the fix; no webhook came
        def latest(self, order_id, history):
            return Order.model_validate(FIXED)

    assert harness.monitor(31, orders=InflowNow()).run() == {"resolved": 1}
    assert read_outbox(harness.outbox) == [] and harness.types() == ["validated", "validated"]
    harness.stack.drain()
    assert ViewQueries(harness.local_dynamo.client, harness.tables.views).pending_errors.all() == []


def test_an_open_claim_holds_other_monitors_off_until_its_lease_runs_out(harness):
    harness.validated(DISCOUNTED, 0)

    class Killed(BaseException):  # the process dies mid-send: no outcome is ever recorded
        pass

    class DyingMailer:
        channel = "email"

        def send(self, subject, body):
            raise Killed()

    with pytest.raises(Killed):
        harness.monitor(31, mailer=DyingMailer()).run()
    assert harness.types() == ["validated", "notification_claimed"]
    assert harness.monitor(33).run() == {"claimed_elsewhere": 1}
    assert harness.monitor(37).run() == {"notified": 1}  # the 5-minute lease ran out: taken over, once
    assert harness.monitor(42).run() == {"not_due": 1}
    assert len(read_outbox(harness.outbox)) == 1


def test_monitor_and_outbox_commands(harness, local_dynamo, monkeypatch, tmp_path, capsys):
    from processors.cli.main import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    common = ["--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-", "--state-dir", str(tmp_path)]
    harness.validated(DISCOUNTED, 0)
    assert main(["monitor", "run", "--now", (T0 + timedelta(minutes=10)).isoformat(), *common]) == 0
    assert "no order is past its grace period" in capsys.readouterr().out
    assert main(["monitor", "run", "--now", (T0 + timedelta(minutes=31)).isoformat(), "--json", *common]) == 0
    assert '"notified": 1' in capsys.readouterr().out
    assert main(["outbox", "--state-dir", str(tmp_path)]) == 0
    assert "Subject: Order SO-1: 1 unresolved error" in capsys.readouterr().out
    assert main(["monitor", "run", "--now", "yesterday", *common]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_without_email_settings_the_notice_is_one_alert_and_is_not_repeated(harness):
    # The shipped samconfig.toml deploys without NotificationEmail / SenderEmail (issue 13 §3).
    unconfigured = mailer_from_env({})
    harness.validated(DISCOUNTED, 0)
    assert harness.monitor(31, mailer=unconfigured).run() == {"notified": 1}
    assert harness.types() == ["validated", "notification_claimed", "errors_notified"]
    notified = harness.stack.store.read_stream("order:o-1")[-1].data
    assert notified.channel == "alert"
    harness.stack.drain()  # projector and reactor: the errors leave the view, the reactor adds no alert
    queries = ViewQueries(harness.local_dynamo.client, harness.tables.views)
    [alert] = queries.alerts.find()
    assert (alert.alert_type, alert.alert_id) == ("notification_unconfigured", notified.message_ref)
    assert "SO-1" in alert.message and "NotificationEmail" in alert.message
    assert queries.pending_errors.all() == []
    assert harness.monitor(36, mailer=unconfigured).run() == {}
    assert harness.monitor(41, mailer=unconfigured).run() == {}
    assert len(harness.types()) == 3 and len(queries.alerts.find()) == 1 and read_outbox(harness.outbox) == []
