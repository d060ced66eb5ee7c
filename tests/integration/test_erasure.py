"""Erasure end to end on DynamoDB Local (issue 22): the local stack's HTTP API, stream consumers, the
keys table with the local stand-in for KMS, and the `dynafold` commands an operator runs.

Before: the order's remarks are sealed in the log, revealed in the pending-errors row. After
`dynafold forget`: the chain still verifies, the row shows [erased], a rebuild reproduces it
exactly (EQUAL), the export and the functions' logs carry no plaintext.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.envelope import NewEvent
from events.personal import ERASED
from processors.adapters.secrets import Secrets
from processors.cli.main import main
from processors.local.api_client import ApiClient
from processors.local.services import LocalApi
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from projections.view_store import from_item
from tests.shopify_fixtures import payload

pytestmark = pytest.mark.integration

REMARKS = "discount approved by Maria Lopez, call +31 6 1234 5678"
ORDER = {"salesOrderId": "so-77", "orderNumber": "SO-000077", "customerId": "C-42", "remarks": REMARKS,
         "lines": [{"productName": "TUK lounge chair", "sku": "TUK-CHAIR", "quantity": 1, "unitPrice": 420,
                    "discount": 10}]}
PAYLOAD = {"customer": "Ann Example", "email": "ann.example@example.com"}
PLAINTEXT = ("Maria Lopez", "1234 5678", "Ann Example", "ann.example@example.com", "john@example.com",
             "555-625-1199")
SECRETS = Secrets.of(shopify="shpss_test", inflow="inflow-test", admin_api_key="admin-test")


@pytest.fixture
def world(local_dynamo, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state"
    stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), state,
                       access_key=local_dynamo.access_key, secrets=SECRETS)
    with LocalApi(stack, SECRETS).serve() as server:
        yield stack, ApiClient(server.url, SECRETS), state


def console_page(stack: LocalStack, path: str) -> tuple[int, str]:
    """A console page as an operator signed in with the admin key gets it (the root's ConsoleDeps)."""
    from dataclasses import replace
    from datetime import datetime, timezone

    from processors.console.app import dispatch
    from processors.console.session import COOKIE, new_cookie

    deps = replace(stack.root.console_deps, secrets=SECRETS)
    cookie = new_cookie("admin-test", datetime.now(timezone.utc), 1)
    event = {"version": "2.0", "rawPath": path, "rawQueryString": "", "cookies": [f"{COOKIE}={cookie}"],
             "headers": {"host": "127.0.0.1"}, "isBase64Encoded": False,
             "requestContext": {"http": {"method": "GET", "path": path, "sourceIp": "127.0.0.1"}, "requestId": "r-1"}}
    _, page = dispatch(event, deps)
    return page.status, page.body.decode("utf-8")


def cli(local_dynamo, *argv: str) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
    return code, out.getvalue()


def pending_rows(stack):
    """The order's row of the pending-errors view: it keeps the order's remarks."""
    table = stack.tables.views["pending-errors"]
    return [from_item(i) for i in stack.client.scan(TableName=table)["Items"] if i["error_hash"]["S"] == "@order"]


def export_text(local_dynamo, path: Path) -> str:
    code, _ = cli(local_dynamo, "audit", "export", "--output", str(path))
    assert code == 0
    return path.read_text()


def test_forget_erases_everywhere_and_the_chain_and_rebuild_agree(world, local_dynamo, tmp_path, capfd):
    stack, api, state = world
    status, body = api.inflow(ORDER, "delivery-77")
    assert status == 200 and body["errors"], body
    stack.store.append("delivery:acme:m-1", [NewEvent("dynafold.delivery.message_received.v1", {
        "sender_id": "acme", "message_id": "m-1", "target_url": "https://hooks.example.com/x",
        "payload": PAYLOAD, "data_subject": "C-42"})])
    stack.drain()
    [row] = pending_rows(stack)
    assert row["remarks"] == REMARKS  # revealed for the operator while the customer is known
    status, html = console_page(stack, "/console/streams/order/so-77/1")
    assert status == 200 and "Maria Lopez" in html  # the console reveals it too, to the signed-in operator
    before = export_text(local_dynamo, tmp_path / "before.jsonl")
    assert not [p for p in PLAINTEXT if p in before]  # the log holds only sealed values

    code, out = cli(local_dynamo, "forget", "inflow-customer:C-42", "--reason", "erasure request 2026-17",
                    "--dry-run", "--state-dir", str(state))
    assert code == 0 and "dry run" in out and pending_rows(stack)[0]["remarks"] == REMARKS
    code, out = cli(local_dynamo, "forget", "inflow-customer:C-42", "--reason", "erasure request 2026-17",
                    "--state-dir", str(state), "--json")
    assert code == 0, out
    forgotten = json.loads(out)
    assert forgotten["key_destroyed"] and forgotten["refolded"] == ["order:so-77"]
    stack.drain()

    assert [r["remarks"] for r in pending_rows(stack)] == [ERASED]
    for path, shows_the_value in (("/console/streams/order/so-77/1", True), ("/console/orders/SO-000077", False)):
        status, html = console_page(stack, path)
        assert status == 200 and not [p for p in PLAINTEXT if p in html], path
        assert (ERASED in html) is shows_the_value, path  # where the value was shown, [erased] is now
    status, html = console_page(stack, "/console/streams/delivery/acme:m-1/1")  # the sender's subject: kept
    assert status == 200 and "ann.example@example.com" in html and ERASED not in html
    code, out = cli(local_dynamo, "audit", "verify", "--all")
    assert code == 0, out
    code, out = cli(local_dynamo, "read", "order:so-77", "--json")
    assert json.loads(out)[0]["data"]["order"] == ERASED
    code, out = cli(local_dynamo, "personal-data", "inflow-customer:C-42", "--json", "--state-dir", str(state))
    assert [v["value"] for v in json.loads(out)["values"]] == [ERASED]
    # Another subject's values are untouched.
    code, out = cli(local_dynamo, "personal-data", "sender:acme:C-42", "--json", "--state-dir", str(state))
    assert [v["value"] for v in json.loads(out)["values"]] == [PAYLOAD]

    after = export_text(local_dynamo, tmp_path / "after.jsonl")
    assert not [p for p in PLAINTEXT if p in after]
    code, out = cli(local_dynamo, "rebuild", "pending-errors", "--state-dir", str(state))
    assert code == 0 and "EQUAL" in out, out  # the rebuilt rows equal the live [erased] ones

    captured = capfd.readouterr()
    logs = captured.out + captured.err + "".join(p.read_text() for p in state.rglob("*.log"))
    assert not [p for p in PLAINTEXT if p in logs]


def test_shopify_privacy_webhooks_on_their_real_shapes(world, local_dynamo, capfd):
    stack, api, _ = world
    status, body = api.shopify("customers/data_request", payload("customers/data_request"), "wh-dr-1",
                               event_id="ev-dr-1")
    assert status == 200 and body["subject"] == "shopify-customer:191167", body
    status, again = api.shopify("customers/data_request", payload("customers/data_request"), "wh-dr-2",
                                event_id="ev-dr-1")
    assert status == 200 and again["deduplicated"] and again["event_id"] == body["event_id"]
    status, body = api.shopify("customers/redact", payload("customers/redact"), "wh-cr-1", event_id="ev-cr-1")
    assert status == 200 and body["forgotten"] == [
        {"subject": "shopify-customer:191167", "key_destroyed": False, "streams": 0}], body
    status, body = api.shopify("shop/redact", payload("shop/redact"), "wh-sr-1", event_id="ev-sr-1")
    assert status == 200 and body["forgotten"] == []
    forged = api.shopify("customers/redact", payload("customers/redact"), "wh-cr-2", secret="not-the-secret")
    assert forged[0] == 401
    stack.drain()

    events = [e for e in stack.store.read_stream("subject:shopify-customer:191167")]
    assert [e.type for e in events] == ["dynafold.privacy.data_requested.v1", "dynafold.privacy.subject_forgotten.v1"]
    alerts = [from_item(i) for i in stack.client.scan(TableName=stack.tables.views["alerts"])["Items"]]
    [alert] = [a for a in alerts if a["alert_type"] == "data_request"]
    assert "dynafold personal-data shopify-customer:191167" in alert["message"]
    stored = "".join(json.dumps(item) for item in stack.store.scan_items())
    captured = capfd.readouterr()
    assert not [p for p in PLAINTEXT if p in stored + captured.out + captured.err]
