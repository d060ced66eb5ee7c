"""The support questions of issue 19 §A1/§A2 on the demo's traffic, asked on the CLI and over HTTP
(both through the composition root), and the redrive on a running local stack.

"Why wasn't order SO-000019 sent?", "why SO-000020?" (fixed in its grace period), "did msg-0001 /
msg-0002 get delivered, when is the next retry, how many are left, when does it give up?"; then a
dead letter redriven once however often it is asked, a disabled target refused until enabled, a
scheduled retry brought forward, and dead letters redriven by filter.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from events.delivery_policy import RetryPolicy, target_stream
from events.envelope import NewEvent, format_time
from events.store import NO_STREAM
from processors.adapters.clock import ManualClock
from processors.adapters.outbound import TargetPolicy
from processors.adapters.secrets import Secrets
from processors.adapters.webhook_signing import new_secret
from processors.api.app import make_handler
from processors.cli.main import main
from processors.local.api_client import ApiClient
from processors.local.http_server import LocalApiServer
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from processors.local.webhook_receiver import Reply, WebhookReceiver
from processors.services.delivery_worker import DeliverySettings
from processors.services.redrive import RedriveRefused
from tests.conftest import LocalDynamo, new_database

ADMIN = "admin-key-support"
TUK_ORDER_ID = "6ce880f5-47cd-4979-87ce-e5b5fa6af1f4"


@pytest.fixture(scope="module")
def demo_run(dynamodb_local, tmp_path_factory) -> tuple[LocalDynamo, Path]:
    """One run of `dynafold demo` (what `make run` shows) into its own database, and its state
    directory (where the local stand-in for KMS keeps the key the personal values are sealed under)."""
    database = new_database(dynamodb_local.endpoint_url)
    where = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", database.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", "local")
        patch.chdir(where)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["demo", "--json", "--endpoint-url", database.endpoint_url, "--table-prefix", "test-"]) == 0
    return database, where / ".dynafold"


@pytest.fixture
def demo(demo_run) -> LocalDynamo:
    return demo_run[0]


def cli_on(database: LocalDynamo, monkeypatch: Any, capsys: Any, tmp_path: Path, state_dir: Path) -> Any:
    """The CLI an operator runs beside the stack: its database, and its state directory."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", database.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop what an in-process API server printed (its Lambda logs)
        code = main([*argv, "--endpoint-url", database.endpoint_url, "--table-prefix", "test-",
                     "--state-dir", str(state_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli(demo_run, monkeypatch, capsys, tmp_path):
    return cli_on(demo_run[0], monkeypatch, capsys, tmp_path, demo_run[1])


def serve(stack: LocalStack) -> Any:
    """The HTTP API of the stack's composition root (the routes' deps, as Lambda builds them)."""
    return LocalApiServer(make_handler(stack.root.api_deps))


@pytest.fixture
def api(demo_run):
    demo, state_dir = demo_run  # the API beside the demo's stack: its database and its keys
    stack = LocalStack(demo.endpoint_url, local_tables("test-", versions={}), state_dir, access_key=demo.access_key,
                       secrets=Secrets.of(admin_api_key=ADMIN))
    with serve(stack) as server:
        yield ApiClient(server.url, Secrets.of(admin_api_key=ADMIN))


def as_json(cli: Any, *argv: str) -> Any:
    code, out, err = cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


# ----------------------------------------------------------------------------- §A1: why wasn't the order sent?

def test_why_the_order_emailed_after_its_grace_period_was_held(cli, api):
    answer = as_json(cli, "explain", "order", "SO-000019")  # by the InFlow number: the by-order-number index
    assert answer["subject"] == f"order:{TUK_ORDER_ID}" and answer["facts"]["order_number"] == "SO-000019"
    [error] = answer["facts"]["errors"]
    assert (error["rule"], error["status"], error["fixed_at"]) == ("discount_on_tuk_item", "notified", None)
    detected, grace_ends = (datetime.fromisoformat(error[k]) for k in ("detected_at", "grace_ends_at"))
    assert (grace_ends - detected).total_seconds() == 30 * 60 and error["notified_at"] > error["grace_ends_at"]
    [notice] = answer["facts"]["notifications"]
    assert (notice["channel"], notice["sent_at"], notice["failures"]) == ("outbox", error["notified_at"], [])
    assert notice["message_ref"]  # the mailer's id of the one email
    assert (answer["facts"]["pending"], answer["facts"]["notified_still_reported"]) == ([], [error["error_hash"]])
    assert answer["answer"].startswith("Order SO-000019 still has 1 unresolved error (discount_on_tuk_item: TUK item "
                                       "TUK-CHAIR has 10% discount). Its grace period of 30 min ended without a fix, "
                                       "so the team was notified by email to the local outbox")
    code, text, _ = cli("explain", "order", TUK_ORDER_ID)  # by id: the same story, in sentences
    assert code == 0 and text.startswith("Order SO-000019 still has 1 unresolved error")
    assert f"sent by email to the local outbox (`dynafold outbox`), message ref {notice['message_ref']}." in text
    assert "Still pending now:\n  discount_on_tuk_item: emailed at" in text and "no second email." in text
    # The route answers from the same services: the same answer.
    status, body = api.admin("GET", "/orders/SO-000019/explanation")
    assert status == 200 and body == answer


def test_why_the_order_fixed_in_its_grace_period_was_not_held(cli):
    answer = as_json(cli, "explain", "order", "SO-000020")
    [error] = answer["facts"]["errors"]
    assert (error["rule"], error["status"], error["notified_at"]) == ("discount_remark", "fixed", None)
    assert error["fixed_at"] < error["grace_ends_at"] and answer["facts"]["notifications"] == []
    assert answer["answer"].startswith("Order SO-000020 has no errors now: 1 error (discount_remark: Discounted order "
                                       "has no discount remark) was fixed")
    assert answer["answer"].endswith("inside its grace period, so no email was sent. Nothing in dynafold holds it back.")


def test_a_pending_errors_lookup_of_an_emailed_order_says_so_and_an_unknown_order_is_404(cli, api):
    assert as_json(cli, "query", "pending-errors", "--order", "SO-000019") == []
    code, out, _ = cli("query", "pending-errors", "--order", "SO-000019")
    assert code == 0 and out.splitlines()[1].startswith(
        f"order SO-000019 ({TUK_ORDER_ID}): nothing pending; 1 error(s) emailed at")
    status, body = api.admin("GET", "/orders/SO-000019/errors")
    assert status == 200 and body["errors"] == [] and len(body["notified"]) == 1
    assert body["order_id"] == TUK_ORDER_ID and "nothing pending" in body["summary"]
    for path in ("/orders/SO-404/errors", "/orders/SO-404/explanation"):
        status, body = api.admin("GET", path)
        assert status == 404 and body["error"] == "not found: order 'SO-404' (no order has this id or InFlow order number)"
    code, out, err = cli("explain", "order", "SO-404")
    assert (code, out, err.count("\n")) == (4, "", 1) and "not found: order 'SO-404'" in err


# ----------------------------------------------------------------------------- §A2: did the webhook get delivered?

def test_did_the_webhooks_get_delivered(cli, api):
    delivered = as_json(cli, "explain", "delivery", "msg-0001")
    facts = delivered["facts"]
    assert (facts["delivered"], facts["attempts"], facts["next_retry_at"], facts["retries_left"]) == (True, 2, None, 0)
    assert delivered["sections"][0]["sentences"][1:] == [
        "Next retry: none, it was delivered.", "Retries left: none needed.", "Gives up: never, it was delivered."]
    assert delivered["answer"].startswith("Yes: delivered to http://127.0.0.1:") and "on attempt 2 (HTTP 200)" in \
        delivered["answer"]
    story = delivered["sections"][1]["sentences"]
    assert "attempt 1: HTTP 500 (SERVER_ERROR)" in story[1] and "retry scheduled for" in story[2]

    dead = as_json(cli, "explain", "delivery", "user123:msg-0002")  # the delivery id works as well
    facts = dead["facts"]
    assert (facts["status"], facts["attempts"], facts["retries_left"], facts["dead_letter_reason"]) == (
        "MAX_RETRIES_EXCEEDED", 4, 0, "MAX_RETRIES_EXCEEDED")
    four = dead["sections"][0]["sentences"]
    assert four[0].startswith("No: it was dead-lettered at ") and "after 4 attempt(s), every retry failed" in four[0]
    assert four[1] == ("Next retry: none; redrive it with `dynafold deliveries redrive user123:msg-0002` for a fresh "
                       "round of retries.")
    assert four[2] == "Retries left: none." and four[3].startswith("Gives up: it already gave up, at ")
    status, body = api.admin("GET", "/messages/msg-0002/explanation")
    assert status == 200 and body == dead
    assert api.admin("GET", "/messages/msg-404/explanation")[0] == 404
    assert cli("explain", "delivery", "msg-404")[0] == 4


def test_the_admin_routes_redrive_or_refuse_with_the_reason(api):
    status, body = api.admin("POST", "/messages/msg-0002/redrive", {"dry_run": True})
    assert status == 200 and (body["outcome"], body["attempt"], body["appended"]) == ("redrive", 5, False)
    status, body = api.admin("POST", "/messages/msg-0001/redrive")
    assert status == 409 and "already delivered" in body["error"]
    status, body = api.admin("POST", "/dead-letters/redrive", {"dry_run": True, "since": "2020-01-01T00:00:00Z"})
    assert status == 200 and [d["delivery_id"] for d in body["deliveries"]] == ["user123:msg-0002"]
    assert body["redriven"] == 0
    assert api.admin("POST", "/dead-letters/redrive", {"since": "yesterday"})[0] == 400


# ----------------------------------------------------------------------------- redrive on a running stack

SECRET = new_secret(b"dynafold-test-signing-key-32byte")
LOOPBACK = TargetPolicy.from_env({"DYNAFOLD_ALLOW_TARGETS": "127.0.0.1/32", "DYNAFOLD_ALLOW_HTTP": "1"})


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as running:
        yield running


def make_stack(local_dynamo: LocalDynamo, state_dir: Path, base_seconds: float = 1.0) -> LocalStack:
    settings = DeliverySettings(retry=RetryPolicy(max_retries=3, base_seconds=base_seconds, cap_seconds=60.0),
                                targets=LOOPBACK, timeout_seconds=0.5, signing_secret=SECRET)
    return LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), state_dir,
                      access_key=local_dynamo.access_key, clock=ManualClock(started_now()), delivery=settings,
                      random_fraction=random.Random(7).random)


def submit(stack: LocalStack, url: str, message_id: str) -> str:
    stream = f"delivery:shop-1:{message_id}"
    data = {"sender_id": "shop-1", "message_id": message_id, "target_url": url, "payload": {"n": message_id}}
    stack.store.append(stream, [NewEvent("dynafold.delivery.message_received.v1", data, time=stack.clock.now())],
                       NO_STREAM, idempotency_key=f"shop-1:{message_id}")
    return stream


def types(stack: LocalStack, stream: str) -> list[str]:
    return [e.type.split(".")[2] for e in stack.store.read_stream(stream)]


def test_a_dead_letter_redriven_gets_a_fresh_round_and_is_redriven_once_however_often_asked(
        local_dynamo, tmp_path, receiver):
    stack = make_stack(local_dynamo, tmp_path)
    receiver.script("/down", *[Reply.status(503)] * 4, Reply.ok())
    stream = submit(stack, receiver.url("/down"), "m1")
    stack.drain(wait_for_deliveries=True)
    assert types(stack, stream)[-1] == "dead_lettered" and len(receiver.received("/down")) == 4
    redrive = stack.root.support.redrive

    done = redrive.redrive("m1", requested_by="ops", reason="target fixed")
    assert (done.plan.outcome, done.appended, done.plan.event.attempt) == ("redrive", True, 5)
    again = redrive.redrive("m1", requested_by="ops")  # asked again (a retried request): nothing appended
    assert (again.plan.outcome, again.appended) == ("already", False)
    waiting = stack.root.support.deliveries.explain("m1")
    assert (waiting.facts["next_attempt"], waiting.facts["retries_left"], waiting.facts["round_start"]) == (5, 3, 5)
    assert waiting.sections[0].sentences[2].startswith("Retries left: 3 (attempts 5 to 8;")

    stack.drain(wait_for_deliveries=True)  # the reactor enqueues attempt 5; the worker delivers it
    assert types(stack, stream)[-4:] == ["dead_lettered", "redrive_requested", "attempted", "succeeded"]
    assert types(stack, stream).count("redrive_requested") == 1 and len(receiver.received("/down")) == 5
    assert stack.root.support.deliveries.explain("m1").facts["delivered"] is True
    with pytest.raises(RedriveRefused, match="already delivered"):
        redrive.redrive("m1")


def test_a_redrive_to_a_disabled_target_is_refused_until_it_is_enabled(local_dynamo, tmp_path, receiver, monkeypatch,
                                                                     capsys):
    stack = make_stack(local_dynamo, tmp_path)
    receiver.script("/gone", Reply.gone(), Reply.ok())
    url = receiver.url("/gone")
    stream = submit(stack, url, "m2")
    stack.drain(wait_for_deliveries=True)
    assert stack.store.read_stream(target_stream(url))  # the 410 disabled the target
    cli = cli_on(local_dynamo, monkeypatch, capsys, tmp_path, tmp_path)
    before = len(stack.store.read_stream(stream))
    code, out, err = cli("deliveries", "redrive", "shop-1:m2")
    assert (code, out) == (2, "") and err.strip() == (
        f"dynafold: delivery shop-1:m2: not redriven: target disabled after HTTP 410 on attempt 1; enable it with "
        f"`dynafold targets enable {url}` first")
    assert len(stack.store.read_stream(stream)) == before  # refused: nothing appended
    assert cli("targets", "enable", url)[0] == 0
    code, out, _ = cli("deliveries", "redrive", "shop-1:m2", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "redrive"
    stack.drain(wait_for_deliveries=True)
    assert types(stack, stream)[-2:] == ["attempted", "succeeded"]


def test_retry_now_brings_a_scheduled_retry_forward_and_the_original_job_is_skipped(local_dynamo, tmp_path, receiver):
    stack = make_stack(local_dynamo, tmp_path, base_seconds=40.0)
    receiver.script("/flaky", Reply.status(503), Reply.ok())
    stream = submit(stack, receiver.url("/flaky"), "m3")
    stack.drain()  # attempt 1 fails; attempt 2 waits in the queue for its jittered delay
    waiting = stack.root.support.deliveries.explain("m3")
    due = waiting.facts["next_retry_at"]
    assert due > stack.clock.now().isoformat() and waiting.facts["retries_left"] == 3
    assert waiting.sections[0].sentences[1].startswith("Next retry: attempt 2 at ")

    done = stack.root.support.redrive.redrive("m3")
    assert (done.plan.outcome, done.plan.event.attempt) == ("retry_now", 2)
    stack.drain()  # the clock has not moved: attempt 2 runs now, not at its scheduled time
    assert types(stack, stream)[-2:] == ["attempted", "succeeded"] and len(receiver.received("/flaky")) == 2
    stack.drain(wait_for_deliveries=True)  # the originally scheduled job comes due and is skipped
    assert len(receiver.received("/flaky")) == 2 and types(stack, stream)[-1] == "succeeded"


def test_dead_letters_are_redriven_by_filter_with_a_dry_run_first(local_dynamo, tmp_path, receiver, monkeypatch,
                                                                 capsys):
    stack = make_stack(local_dynamo, tmp_path)
    receiver.script("/down", Reply.status(503))
    early = submit(stack, receiver.url("/down"), "m4")
    stack.drain(wait_for_deliveries=True)
    stack.clock.advance(3600)
    since = stack.clock.now().isoformat()  # m4 was dead-lettered before, m5 after
    late = submit(stack, receiver.url("/down"), "m5")
    stack.drain(wait_for_deliveries=True)
    cli = cli_on(local_dynamo, monkeypatch, capsys, tmp_path, tmp_path)

    dry = as_json(cli, "deliveries", "redrive", "--dead-letters", "--dry-run")
    assert [(d["delivery_id"], d["outcome"], d["appended"]) for d in dry["deliveries"]] == [
        ("shop-1:m4", "redrive", False), ("shop-1:m5", "redrive", False)]
    assert types(stack, early)[-1] == types(stack, late)[-1] == "dead_lettered"  # a dry run appends nothing
    code, out, _ = cli("deliveries", "redrive", "--dead-letters", "--since", since)
    assert code == 0 and out.splitlines()[-1] == (
        f"1 dead-lettered delivery since {format_time(stack.clock.now())}: 1 redriven, 0 refused")
    assert out.splitlines()[0].startswith("shop-1:m5: redriven (redrive, v")
    assert types(stack, late)[-1] == "redrive_requested" and types(stack, early)[-1] == "dead_lettered"
    assert cli("deliveries", "redrive")[0] == 2  # neither one delivery nor --dead-letters


def started_now() -> datetime:
    """A stack's manual clock starts at the real now, not at import: the receiver checks a signature's
    timestamp against the wall clock (Standard Webhooks' 5-minute tolerance), and a suite run can
    reach this module more than five minutes after collecting it."""
    return datetime.now(timezone.utc).replace(microsecond=0)
