"""The CLI against the engine: outputs, exit codes, one-line errors."""

import json

import pytest

from processors.cli.main import main


@pytest.fixture
def cli(local_dynamo, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")

    def run(*argv):
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_append_then_read_as_json(cli):
    code, out, _ = cli("append", "sku:P1", "dynafold.inventory.physical_count_set.v1",
                       "--data", '{"sku": "P1", "physical": 12}', "--expected-version", "none",
                       "--idempotency-key", "k-1", "--json")
    assert code == 0
    appended = json.loads(out)
    assert appended["versions"] == [1] and not appended["deduplicated"]
    code, out, _ = cli("read", "sku:P1", "--json")
    events = json.loads(out)
    assert code == 0 and events[0]["id"] == appended["event_ids"][0]
    assert events[0]["data"] == {"sku": "P1", "physical": 12, "source": "admin"}


@pytest.mark.parametrize("argv, code, fragment", [
    (["append", "sku:P1", "dynafold.inventory.buffer_set.v1", "--data", "{not json"], 2, "not valid JSON"),
    (["append", "sku:P1", "dynafold.inventory.buffer_set.v1", "--data", '{"sku":"P1","bufer":1}'], 2, "bufer"),
    (["append", "sku:P1", "dynafold.x.y.v1", "--data", "{}"], 2, "unknown event type"),
    (["append", "sku:P1", "dynafold.inventory.buffer_set.v1", "--data", '{"sku":"P1","buffer":1}',
      "--expected-version", "soon"], 2, "expected version"),
    (["append", "sku:P1", "dynafold.inventory.buffer_set.v1", "--data", '{"sku":"P1","buffer":1}',
      "--expected-version", "4"], 3, "is at version 0"),
    (["read", "nostream"], 2, "invalid stream id"),
    (["bogus"], 2, "invalid choice"),
    # Issue 12 defect 9: these were tracebacks.
    (["append", "sku:P1", "dynafold.inventory.buffer_set.v1", "--data", "[" * 100_000 + "]" * 100_000], 2,
     "nested too deeply"),
    (["append", "sku:P1", "dynafold.inventory.buffer_set.v1", "--data", '{"sku":"P1","buffer":' + "[" * 5_000
      + "]" * 5_000 + "}"], 2, "buffer"),
    (["query", "pending-errors", "--older-than", "10000000000d"], 2, "too long"),
    (["query", "pending-errors", "--older-than", "999999999d"], 2, "too long"),
    (["query", "pending-errors", "--older-than", "9" * 5000 + "s"], 2, "too long"),
    (["query", "pending-errors", "--older-than", "\u0661\u0662m"], 2, "invalid duration"),
    # Issue 18 §4: one SKU rule at every entry; this SKU's stream key (sku: + 2,048 bytes) can never be written.
    (["shopify", "map", "5", "\U0001d11e" * 512], 2, "2048 bytes"),
    (["shopify", "map", "5", "A\x85B"], 2, "control character (U+0085)"),
])
def test_bad_input_is_one_line_and_changes_nothing(cli, local_dynamo, argv, code, fragment):
    got, _out, err = cli(*argv)
    assert got == code
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert local_dynamo.client.scan(TableName=local_dynamo.names.events, Select="COUNT")["Count"] == 0


def test_types_lists_every_type_with_a_schema(cli):
    code, out, _ = cli("types", "--json")
    types = json.loads(out)
    assert code == 0 and any(t["type"] == "dynafold.inventory.stock_adjusted.v2" for t in types)


def test_demo_drives_the_seeds_through_http_and_ends_with_the_views_the_email_and_the_dlq(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the demo keeps the functions' logs under ./.dynafold/logs
    code, out, _ = cli("demo", "--json")
    assert code == 0
    summary = json.loads(out)
    views = summary["views"]
    assert summary["chains_ok"]
    assert views["pending_errors"] == []  # one order fixed in its grace period, the other notified
    [email] = summary["outbox"]
    assert email["subject"] == "Order SO-000019: 1 unresolved error" and "kept-out" not in email["body"]
    deliveries = {d["delivery_id"]: d for d in views["deliveries"]}
    assert (deliveries["user123:msg-0001"]["status"], deliveries["user123:msg-0001"]["attempts"]) == ("SUCCESS", 2)
    assert (deliveries["user123:msg-0002"]["status"], deliveries["user123:msg-0002"]["attempts"]) == (
        "MAX_RETRIES_EXCEEDED", 4)
    assert [d["reason"] for d in summary["dead_letters"]] == ["MAX_RETRIES_EXCEEDED"]
    assert summary["webhooks_received"] == {"/orders-hook": 2, "/down": 4, "/storefront": 6}
    inventory = {i["sku"]: (i["available"], i["broadcast"]) for i in views["inventory"]}
    # the storefront has the latest counts
    assert inventory == {"PROD-001": (43, 43), "PROD-002": (3, 3), "PROD-003": (12, 12)}
    # The local Shopify: pushed 12 over its 0, ignored the echo; a merchant's 30 was drift, set back
    # to 12 (two inventorySetQuantities calls, one sync_drift alert below).
    assert summary["shopify"] == {"levels": {"39072856@905684977": 12}, "set_quantities_calls": 2}
    assert [r["disposition"] for r in views["returns"]] == ["DAMAGED"]
    assert sorted(a["alert_type"] for a in views["alerts"]) == [
        "delivery_dead_lettered", "order_errors_notified", "return_damaged", "stock_low", "sync_drift"]
    emf = [json.loads(line) for line in (tmp_path / ".dynafold/logs/dynafold-ingest.log").read_text().splitlines()
           if line.startswith('{"_aws"')]
    assert any("EventsAppended" in blob for blob in emf)

    code, out, _ = cli("query", "all", "--json")  # the same views, asked again
    assert code == 0 and json.loads(out) == views
