"""Webhook delivery end to end: reactor -> job queue -> worker -> real HTTP on loopback -> events -> views.

The local stack runs on DynamoDB Local's real stream with a manual clock, so retry delays are
fast-forwarded rather than slept; the receiver is a real HTTP server verifying signatures.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from datetime import datetime, timezone

import pytest

from events.delivery_policy import RetryPolicy, target_stream
from events.envelope import NewEvent
from events.sealing import PersonalDataLog
from events.store import NO_STREAM
from processors.adapters.clock import ManualClock
from processors.adapters.delivery_queue import DeliveryJob
from processors.local.queues import LocalMessage
from processors.handlers.delivery_worker import make_handler
from processors.services.delivery_worker import DeliverySettings, DeliveryWorker
from processors.local.lambda_logs import lambda_logs
from processors.local.stack import LOGGER_NAMES, LocalStack
from processors.adapters.outbound import TargetPolicy
from processors.local.stream_runner import LambdaContext
from processors.local.webhook_receiver import Reply, WebhookReceiver
from processors.adapters.webhook_signing import new_secret
from projections.view_store import from_item
from processors.local.tables import local_tables

SECRET = new_secret(b"dynafold-test-signing-key-32byte")
POLICY = RetryPolicy(max_retries=3, base_seconds=1.0, cap_seconds=60.0)
LOOPBACK = TargetPolicy.from_env({"DYNAFOLD_ALLOW_TARGETS": "127.0.0.1/32", "DYNAFOLD_ALLOW_HTTP": "1"})
SETTINGS = DeliverySettings(retry=POLICY, targets=LOOPBACK, timeout_seconds=0.5, signing_secret=SECRET)


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as running:
        yield running


@pytest.fixture
def clock():
    return ManualClock(started_now())


def make_stack(local_dynamo, state_dir, clock, settings=SETTINGS, **kwargs):
    return LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), state_dir,
                      access_key=local_dynamo.access_key, clock=clock, delivery=settings,
                      random_fraction=random.Random(7).random, **kwargs)


@pytest.fixture
def stack(local_dynamo, tmp_path, clock):
    return make_stack(local_dynamo, tmp_path, clock)


def submit(stack, url, message_id, sender="shop-1", payload=None):
    stream = f"delivery:{sender}:{message_id}"
    data = {"sender_id": sender, "message_id": message_id, "target_url": url,
            "payload": payload or {"event": "order.paid", "message": message_id}}
    stack.store.append(stream, [NewEvent("dynafold.delivery.message_received.v1", data, time=stack.clock.now())],
                       NO_STREAM, idempotency_key=f"{sender}:{message_id}")
    return stream


def row(stack, sender, message_id):
    item = stack.client.get_item(TableName=stack.tables.views["delivery-status"],
                                 Key={"delivery_id": {"S": f"{sender}:{message_id}"}})["Item"]
    return from_item(item)


def types(stack, stream):
    return [e.type.split(".")[2] for e in stack.store.read_stream(stream)]


def alerts(stack):
    return [from_item(i) for i in stack.client.scan(TableName=stack.tables.views["alerts"])["Items"]]


def emf_metrics(output):
    metrics = {}
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        if blob.get("service") != "delivery-worker":
            continue
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "dynafold"
        assert directive["Dimensions"] == [["service"]]  # low cardinality: never a target, sender or message
        for metric in directive["Metrics"]:
            values = blob[metric["Name"]]
            metrics.setdefault(metric["Name"], []).extend(values if isinstance(values, list) else [values])
    return metrics


# ----------------------------------------------------------------------------- retries and the view

def test_a_target_that_recovers_is_retried_with_backoff_and_ends_delivered(stack, receiver, clock, capsys):
    receiver.script("/flaky", Reply.status(503), Reply.retry_after(5), Reply.ok())
    stream = submit(stack, receiver.url("/flaky"), "msg-1")
    stack.drain(wait_for_deliveries=True)

    assert types(stack, stream) == ["message_received", "attempted", "retry_scheduled", "attempted",
                                    "retry_scheduled", "attempted", "succeeded"]
    view = row(stack, "shop-1", "msg-1")
    assert (view["status"], view["attempts"], view.get("next_retry_at")) == ("SUCCESS", 3, None)
    first, second = view["retry_history"]
    assert [(e["attempt"], e["category"], e["status_code"]) for e in (first, second)] == [
        (1, "SERVER_ERROR", 503), (2, "RATE_LIMITED", 429)]
    assert first["exponential_delay"] == 1 and 0 <= first["delay_seconds"] <= 1
    assert first["delay_seconds"] == pytest.approx(first["exponential_delay"] - first["jitter"], abs=1e-3)
    assert second["exponential_delay"] == 2 and second["delay_seconds"] == 5  # Retry-After: 5 beats the jitter
    assert view["last_result"]["status_code"] == 200 and view["delivered_at"]

    # Each retry went out when it was due, not before: the clock only moved to the due times.
    attempted = [e for e in stack.store.read_stream(stream) if e.type.endswith("attempted.v1")]
    scheduled = [e for e in stack.store.read_stream(stream) if e.type.endswith("retry_scheduled.v1")]
    assert all(a.time >= s.data.next_retry_at for s, a in zip(scheduled, attempted[1:], strict=True))

    requests = receiver.received("/flaky")
    assert len(requests) == 3 and all(r.signature_valid for r in requests)
    assert len({r.webhook_id for r in requests}) == 1  # the same id on every retry
    assert [r.timestamp for r in requests] == [int(a.time.timestamp()) for a in attempted]
    assert all(r.json() == {"event": "order.paid", "message": "msg-1"} for r in requests)

    metrics = emf_metrics(capsys.readouterr().out)
    assert sum(metrics["DeliveryAttempts"]) == 3 and len(metrics["DeliveryLatency"]) == 3
    assert (sum(metrics["DeliveriesFailed"]), sum(metrics["RetriesScheduled"]),
            sum(metrics["DeliveriesSucceeded"])) == (2, 2, 1)
    assert len(stack.delivery_queue) == 0


def test_a_target_that_keeps_failing_is_dead_lettered_after_three_retries(stack, receiver):
    receiver.script("/down", Reply.status(500))
    stream = submit(stack, receiver.url("/down"), "msg-2", payload={"order": 42})
    stack.drain(wait_for_deliveries=True)

    assert types(stack, stream)[-2:] == ["attempted", "dead_lettered"]
    view = row(stack, "shop-1", "msg-2")
    assert (view["status"], view["attempts"], view["dead_letter_reason"]) == (
        "MAX_RETRIES_EXCEEDED", 4, "MAX_RETRIES_EXCEEDED")
    assert [e["exponential_delay"] for e in view["retry_history"]] == [1, 2, 4]
    assert all(0 <= e["delay_seconds"] <= e["exponential_delay"] for e in view["retry_history"])
    assert len(receiver.received("/down")) == 4

    [letter] = stack.dead_letters.read()
    assert (letter["delivery_stream"], letter["reason"], letter["attempts"]) == (stream, "MAX_RETRIES_EXCEEDED", 4)
    # The payload as the log keeps it: sealed (no copy of personal data outside the log's keys).
    assert letter["payload"].startswith("sealed:1:") and "42" not in letter["payload"].rsplit(":", 1)[-1]
    assert stack.store.read_stream(stream)[0].data.payload == {"order": 42}
    [alert] = [a for a in alerts(stack) if a["alert_type"] == "delivery_dead_lettered"]
    assert alert["severity"] == "critical" and "MAX_RETRIES_EXCEEDED" in alert["message"]


@pytest.mark.parametrize("reply, reason", [
    (Reply.status(404), "PERMANENT_FAILURE: HTTP 404 (CLIENT_ERROR)"),
    (Reply.redirect("http://127.0.0.1:1/internal"), "REDIRECT: HTTP 302 (redirects are not followed)"),
])
def test_a_permanent_failure_dead_letters_after_one_request(stack, receiver, reply, reason):
    receiver.script("/perm", reply)
    submit(stack, receiver.url("/perm"), "msg-3")
    stack.drain(wait_for_deliveries=True)
    view = row(stack, "shop-1", "msg-3")
    assert (view["status"], view["attempts"], view["dead_letter_reason"]) == ("FAILED", 1, reason)
    assert len(receiver.received("/perm")) == 1
    assert [m["reason"] for m in stack.dead_letters.read()] == [reason]


def test_a_slow_target_times_out_and_is_retried(stack, receiver):
    receiver.script("/slow", Reply.slow(3.0), Reply.ok())
    submit(stack, receiver.url("/slow"), "msg-4")
    stack.drain(wait_for_deliveries=True)
    view = row(stack, "shop-1", "msg-4")
    assert (view["status"], view["attempts"]) == ("SUCCESS", 2)
    assert view["retry_history"][0]["category"] == "TIMEOUT" and view["retry_history"][0].get("status_code") is None


# ----------------------------------------------------------------------------- 410 disables the target

def test_410_disables_the_target_until_an_operator_enables_it(stack, receiver, local_dynamo, monkeypatch, capsys):
    from processors.cli.main import main

    receiver.script("/gone", Reply.gone())
    url = receiver.url("/gone")
    submit(stack, url, "msg-5")
    stack.drain(wait_for_deliveries=True)
    assert row(stack, "shop-1", "msg-5")["dead_letter_reason"] == "TARGET_GONE: HTTP 410, target disabled"
    [disabled] = stack.store.read_stream(target_stream(url))
    assert (disabled.data.target_url, disabled.data.status_code) == (url, 410)

    submit(stack, url, "msg-6", sender="shop-2")  # another sender, same target: no request at all
    stack.drain(wait_for_deliveries=True)
    later = row(stack, "shop-2", "msg-6")
    assert (later["status"], later["last_result"]["category"]) == ("FAILED", "REFUSED")
    assert later["dead_letter_reason"].startswith("TARGET_DISABLED: HTTP 410")
    assert len(receiver.received("/gone")) == 1

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    cli = ["--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"]
    assert main(["targets", "enable", url, "--reason", "endpoint restored", *cli]) == 0
    assert "enabled again" in capsys.readouterr().out
    assert main(["targets", "enable", url, *cli]) == 0  # a second enable appends nothing
    assert "nothing to do" in capsys.readouterr().out
    assert len(stack.store.read_stream(target_stream(url))) == 2

    receiver.script("/gone", Reply.ok())
    submit(stack, url, "msg-7")
    stack.drain(wait_for_deliveries=True)
    assert row(stack, "shop-1", "msg-7")["status"] == "SUCCESS"


# ----------------------------------------------------------------------------- safety

@pytest.mark.parametrize("url", ["https://hooks.internal.test/x", "http://169.254.169.254/latest/meta-data/"])
def test_a_target_resolving_to_a_private_address_dead_letters_without_opening_a_socket(
        local_dynamo, tmp_path, clock, monkeypatch, url):
    resolved = []

    def resolve(host, port):
        resolved.append(host)
        return ["10.0.0.5"] if host == "hooks.internal.test" else [host]

    def no_connections(*args, **kwargs):
        raise AssertionError("the worker opened a socket to a refused target")

    stack = make_stack(local_dynamo, tmp_path, clock, resolve=resolve)
    monkeypatch.setattr(socket, "create_connection", no_connections)  # what the HTTP adapter connects with
    submit(stack, url, "msg-8")
    stack.drain(wait_for_deliveries=True)
    view = row(stack, "shop-1", "msg-8")
    assert (view["status"], view["attempts"], view["last_result"]["category"]) == ("FAILED", 1, "REFUSED")
    assert view["dead_letter_reason"].startswith("TARGET_REFUSED: target ")
    assert resolved and [m["reason"] for m in stack.dead_letters.read()] == [view["dead_letter_reason"]]


def test_two_workers_racing_on_one_job_record_one_attempt(stack, receiver, local_dynamo, clock):
    receiver.script("/race", Reply(200, wait_for_requests=2))  # both requests in flight before either answer
    stream = submit(stack, receiver.url("/race"), "msg-9")
    job = DeliveryJob(stream=stream, attempt=1, cause_event_id="cause-1")
    # Two workers with stores of their own, revealing the sealed payload as the root's does.
    workers = [DeliveryWorker(PersonalDataLog(local_dynamo.store(), stack.root.revealer), stack.delivery_queue, SETTINGS,
                              clock=clock) for _ in range(2)]
    results = [None, None]
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, workers[i].run(job))) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(r.outcome for r in results) == ["raced", "succeeded"]
    assert types(stack, stream) == ["message_received", "attempted", "succeeded"]
    assert len(receiver.received("/race")) == 2  # at least once: both sent, one webhook-id to dedupe on
    assert len({r.webhook_id for r in receiver.received("/race")}) == 1


def test_an_unreadable_retry_after_still_records_the_attempt_and_retries(stack, receiver):
    """Issue 12 defect 3: 'Retry-After: \u00b2' passed isdigit() and crashed the job after the POST."""
    receiver.script("/sup", Reply.retry_after("\u00b2", 503), Reply.ok())
    stream = submit(stack, receiver.url("/sup"), "msg-sup")
    stack.drain(wait_for_deliveries=True)
    assert types(stack, stream) == ["message_received", "attempted", "retry_scheduled", "attempted", "succeeded"]
    assert len(receiver.received("/sup")) == 2
    assert not stack.delivery_queue.dead_letter_path.exists() or not stack.delivery_queue.dead_letter_path.read_text()


def test_any_failure_after_the_request_went_out_records_the_attempt_and_follows_the_retry_policy(
        stack, receiver, clock):
    """Issue 12 defect 3, more generally: the request was sent, then something in our own code broke."""
    receiver.script("/after", Reply.ok())
    stream = submit(stack, receiver.url("/after"), "msg-after")

    def sent_then_broke(target, body, headers, timeout, tls=None):
        from processors.adapters.webhook_http import post
        post(target, body, headers, timeout, tls)
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    worker = DeliveryWorker(stack.store, stack.delivery_queue, SETTINGS, clock=clock, send=sent_then_broke)
    result = worker.run(DeliveryJob(stream=stream, attempt=1, cause_event_id="cause-after"))
    assert result.outcome == "retry_scheduled"
    assert types(stack, stream) == ["message_received", "attempted", "retry_scheduled"]
    [attempted] = [e.data for e in stack.store.read_stream(stream) if e.type.endswith("attempted.v1")]
    assert attempted.category == "CONNECTION_ERROR" and attempted.retryable and "UnicodeDecodeError" in attempted.error
    assert len(receiver.received("/after")) == 1


def test_duplicate_stale_and_early_jobs_change_nothing_and_send_nothing(stack, receiver, clock):
    receiver.script("/once", Reply.status(503), Reply.ok())
    stream = submit(stack, receiver.url("/once"), "msg-10")
    stack.drain()  # attempt 1 fails; attempt 2 is queued for later
    assert row(stack, "shop-1", "msg-10")["status"] == "RETRY_SCHEDULED"
    version = len(stack.store.read_stream(stream))

    worker = DeliveryWorker(stack.store, stack.delivery_queue, SETTINGS, clock=clock)
    assert worker.run(DeliveryJob(stream=stream, attempt=1, cause_event_id="dup")).outcome == "skipped"
    assert worker.run(DeliveryJob(stream=stream, attempt=3, cause_event_id="stale")).outcome == "skipped"
    early = worker.run(DeliveryJob(stream=stream, attempt=2, cause_event_id="early"))
    assert early.outcome == "deferred"  # re-enqueued for the time left
    assert len(stack.store.read_stream(stream)) == version
    assert len(receiver.received("/once")) == 1

    stack.drain(wait_for_deliveries=True)  # the scheduled job and the deferred copy: one attempt 2
    assert types(stack, stream)[-2:] == ["attempted", "succeeded"]
    assert len(receiver.received("/once")) == 2


def test_a_missing_signing_secret_sends_nothing_and_the_job_ends_in_the_job_dlq(local_dynamo, tmp_path, clock,
                                                                                 receiver):
    unsigned = DeliverySettings(retry=POLICY, targets=LOOPBACK, timeout_seconds=0.5, signing_secret=None)
    receiver.script("/hook", Reply.ok())
    with lambda_logs(tmp_path / "logs", LOGGER_NAMES) as logs:  # the function logs, as `dynafold up` keeps them
        stack = make_stack(local_dynamo, tmp_path, clock, settings=unsigned, logs=logs)
        stream = submit(stack, receiver.url("/hook"), "msg-11")
        stack.drain(wait_for_deliveries=True)  # the job fails each time, then moves to the job DLQ

    assert receiver.received() == []
    assert types(stack, stream) == ["message_received"]
    [failed_job] = stack.delivery_queue.dead_letter_path.read_text().splitlines()
    assert json.loads(json.loads(failed_job)["body"])["stream"] == stream
    failures = [json.loads(line) for line in logs.path("dynafold-delivery-worker").read_text().splitlines()
                if '"delivery job failed"' in line]
    assert len(failures) == 5  # one per receive, until the redrive limit
    assert failures[0]["error"] == ("SigningSecretError: DYNAFOLD_SIGNING_SECRET is not set: "
                                    "webhooks are never sent unsigned")
    assert failures[0]["level"] == "ERROR" and failures[0]["delivery_stream"] == stream
    assert "order.paid" not in logs.path("dynafold-delivery-worker").read_text()  # never the payload


def test_pending_retries_survive_a_restart_of_the_local_stack(local_dynamo, tmp_path, clock, receiver):
    receiver.script("/later", Reply.status(500), Reply.ok())
    first = make_stack(local_dynamo, tmp_path, clock)
    stream = submit(first, receiver.url("/later"), "msg-12")
    first.drain()
    assert len(first.delivery_queue) == 1

    restarted = make_stack(local_dynamo, tmp_path, clock)
    restarted.drain(wait_for_deliveries=True)
    assert types(restarted, stream)[-1] == "succeeded"


def test_a_message_that_is_not_a_job_fails_alone_and_appends_nothing(stack, receiver, clock):
    receiver.script("/ok", Reply.ok())
    stream = submit(stack, receiver.url("/ok"), "msg-13")
    bodies = {
        "garbage": "not json",
        "nobody": DeliveryJob(stream="delivery:nobody:x", attempt=1, cause_event_id="c").to_body(),
        "good": DeliveryJob(stream=stream, attempt=1, cause_event_id="c").to_body(),
    }
    records = [stack.delivery_queue.to_sqs_record(LocalMessage(name, body, "2026-01-01T00:00:00Z",
                                                               "2026-01-01T00:00:00Z", 1, name), "us-east-1")
               for name, body in bodies.items()]
    handler = make_handler(DeliveryWorker(stack.store, stack.delivery_queue, SETTINGS, clock=clock))
    context = LambdaContext("dynafold-delivery-worker", "req-1", "arn:aws:lambda:us-east-1:0:function:w",
                            time.monotonic() + 60)

    def event_count():
        return stack.client.scan(TableName=stack.tables.events, Select="COUNT")["Count"]

    before = event_count()
    response = handler({"Records": records}, context)
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["garbage", "nobody"]
    assert event_count() == before + 2  # the good job's attempted + succeeded, nothing else
    assert types(stack, stream)[-1] == "succeeded"


def started_now() -> datetime:
    """A stack's manual clock starts at the real now, not at import: the receiver checks a signature's
    timestamp against the wall clock (Standard Webhooks' 5-minute tolerance), and a suite run can
    reach this module more than five minutes after collecting it."""
    return datetime.now(timezone.utc).replace(microsecond=0)
