"""Issue 19 §A4, "Is everything caught up and healthy?", on the demo's traffic: `dynafold status`
and `GET /status` read the local stack the demo ran (the readers' checkpoints against the stream,
the functions' EMF lines, the template's alarms over them, the views) and say it in words."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from events.envelope import NewEvent, parse_time
from events.store import ANY, EventStore
from processors.adapters.aws import dynamodb_client
from processors.cli.context import Context
from processors.local.stack import LocalStack
from processors.local.stream_runner import LambdaContext
from processors.local.tables import local_tables
from tests.integration.demo_traffic import DemoRun, demo_cli, run_demo


@pytest.fixture(scope="module")
def demo(dynamodb_local, tmp_path_factory) -> DemoRun:
    return run_demo(dynamodb_local.endpoint_url, tmp_path_factory.mktemp("status-demo"))


@pytest.fixture
def cli(demo, monkeypatch, capsys):
    return demo_cli(demo, monkeypatch, capsys, "--state-dir", str(demo.state_dir))


def test_status_after_the_demo_names_the_dead_letter_and_its_alarm_and_finds_every_reader_caught_up(cli, demo):
    code, out, err = cli("status", "--json")
    assert code == 1, err  # something needs attention
    status = json.loads(out)  # one JSON document on stdout
    assert status["attention"] == ["webhook deliveries dead-lettered: 1 in the last 1h",
                                   "alarm dynafold-deliveries-dead-lettered is in ALARM"]

    readers = {reader["reader"]: reader for reader in status["readers"]}
    newest = _newest(demo)
    for name in ("projector", "reactor"):  # both applied the log's newest event: no lag
        reader = readers[name]
        assert (reader["lag_seconds"], reader["pending"], reader["behind"]) == (0.0, 0, False), reader
        assert reader["applied_time"] == newest
        assert reader["sentence"].startswith(f"{name}: caught up; the last event it applied, {newest}, is the newest")
        # Its IteratorAge over the hour, as the stand-in of Lambda's mapping reported it (the console's chart).
        assert reader["lag_series"]["period_seconds"] == 60 and reader["lag_series"]["points"]
    assert readers["stream-failures"]["pending"] == 0 and readers["stream-failures"]["title"] == "failure consumer"

    counts = {count["key"]: count["total"] for count in status["failures"]["counts"]}
    assert counts == {"records_failed": 0, "records_given_up": 0, "dead_lettered": 1}
    [dead] = status["failures"]["alerts"]
    assert dead["alert_type"] == "delivery_dead_lettered"
    assert dead["message"] == "delivery user123:msg-0002 dead-lettered after 4 attempts: MAX_RETRIES_EXCEEDED"

    [alarm] = status["alarms"]["in_alarm"]
    assert alarm["name"] == "dynafold-deliveries-dead-lettered"
    assert alarm["reason"] == ("1 of the last 1 5-minute period(s) [1] breached (greater than the threshold 0); "
                               "it alarms at 1")
    assert "dynafold-projector-errors: AWS/Lambda Errors is reported on AWS only" in status["alarms"]["not_evaluated"]
    assert status["versions"] == {"alerts": "v1", "delivery-status": "v2", "inventory": "v1",
                                  "inventory-returns": "v1", "pending-errors": "v1"}
    assert status["rebuilds"] == []

    code, text, _ = cli("status")
    assert code == 1
    assert text.startswith("Needs attention: webhook deliveries dead-lettered: 1 in the last 1h; alarm "
                           "dynafold-deliveries-dead-lettered is in ALARM.")
    assert f"  reactor: caught up; the last event it applied, {newest}, is the newest" in text
    assert "  failure consumer: caught up; there is no failed batch to apply." in text


def test_get_status_answers_what_the_cli_answers(cli, demo, monkeypatch, capsys):
    monkeypatch.setenv("DYNAFOLD_ADMIN_API_KEY", "status-key")
    _, out, _ = cli("status", "--json")
    root = Context(demo.endpoint_url, "dynafold-", as_json=True, state_dir=demo.state_dir).root()
    event = {"version": "2.0", "routeKey": "$default", "rawPath": "/status", "rawQueryString": "",
             "headers": {"x-api-key": "status-key"}, "body": "",
             "requestContext": {"http": {"method": "GET", "path": "/status"}, "requestId": "status-1"}}
    answer = root.handler("ingest")(event, LambdaContext.local("dynafold-ingest", 29))
    capsys.readouterr()
    assert answer["statusCode"] == 200
    route, cli_answer = json.loads(answer["body"]), json.loads(out)
    for key in ("healthy", "attention", "versions", "rebuilds"):
        assert route[key] == cli_answer[key], key
    assert [r["sentence"] for r in route["readers"]] == [r["sentence"] for r in cli_answer["readers"]]


def test_a_reader_behind_is_said_with_what_waits_and_needs_attention(cli, demo, capsys):
    later = parse_time(_newest(demo)) + timedelta(minutes=2)
    stack = LocalStack(demo.endpoint_url, local_tables("dynafold-", versions={}), demo.state_dir,
                       access_key=demo.access_key)
    # Three events the readers have not seen, the newest two minutes after the last one they applied.
    store = EventStore.over(stack.client, stack.tables, clock=lambda: later)
    for physical in (7, 6, 5):
        store.append("sku:STATUS-1", [NewEvent("dynafold.inventory.physical_count_set.v1",
                                               {"sku": "STATUS-1", "physical": physical})], ANY)
    try:
        code, out, _ = cli("status", "--json", "--lag-threshold", "90s")
        status = json.loads(out)
        readers = {reader["reader"]: reader for reader in status["readers"]}
        assert code == 1
        for name in ("projector", "reactor"):
            assert (readers[name]["pending"], readers[name]["lag_seconds"]) == (3, 120.0)
            assert f"the {name} is 2m behind (more than 1m30s)" in status["attention"]
            assert readers[name]["sentence"].startswith(f"{name}: 2m behind: 3 events not yet applied")
    finally:
        stack.drain()  # caught up again for the module's other tests
        capsys.readouterr()  # the handlers' log lines
    code, out, _ = cli("status", "--json")
    assert all(reader["pending"] == 0 for reader in json.loads(out)["readers"])


def _newest(demo: DemoRun) -> str:
    """The time of the log's newest event (the demo's are few: one Scan page)."""
    client = dynamodb_client(demo.endpoint_url, access_key=demo.access_key)
    return max(item["time"]["S"] for item in client.scan(TableName="dynafold-events")["Items"])
