"""Issue 19 §A6, marking alerts read, on the demo's traffic: `dynafold alerts read ID...` and by filter,
`POST /alerts/{id}/read` and `POST /alerts/read`, all one service. Only unread alerts get an
`alert read` event; a second run changes nothing; an unknown id marks nothing."""

from __future__ import annotations

import json

import pytest

from processors.adapters.aws import dynamodb_client
from processors.cli.context import Context
from processors.local.stack import LocalStack
from processors.local.stream_runner import LambdaContext
from processors.local.tables import local_tables
from tests.integration.demo_traffic import DemoRun, demo_cli, run_demo

ALERT_READ = "dynafold.alerts.read.v1"


@pytest.fixture(scope="module")
def demo(dynamodb_local, tmp_path_factory) -> DemoRun:
    return run_demo(dynamodb_local.endpoint_url, tmp_path_factory.mktemp("alerts-demo"))


@pytest.fixture
def cli(demo, monkeypatch, capsys):
    monkeypatch.setenv("DYNAFOLD_ADMIN_API_KEY", "alerts-key")
    return demo_cli(demo, monkeypatch, capsys)


@pytest.fixture
def project(demo, capsys):
    """Run the projector (and reactor) over what was appended, as the running stack would."""
    def run() -> None:
        LocalStack(demo.endpoint_url, local_tables("dynafold-", versions={}), demo.state_dir,
                   access_key=demo.access_key).drain()
        capsys.readouterr()

    return run


def reads(demo: DemoRun) -> list[dict]:
    """Every `alert read` event in the log: what marking appended."""
    client = dynamodb_client(demo.endpoint_url, access_key=demo.access_key)
    items = client.scan(TableName="dynafold-events", FilterExpression="#t = :t",
                        ExpressionAttributeNames={"#t": "type"}, ExpressionAttributeValues={":t": {"S": ALERT_READ}})
    return [{"stream": i["stream"]["S"], "data": json.loads(i["data"]["S"]), "source": i["source"]["S"],
             "correlation_id": i["correlation_id"]["S"]} for i in items["Items"]]


def alerts(cli, *filters: str) -> dict[str, dict]:
    code, out, _ = cli("alerts", "list", "--json", *filters)
    assert code == 0
    return {alert["alert_type"]: alert for alert in json.loads(out)}


def test_alerts_list_is_query_alerts(cli):
    code, listed, _ = cli("alerts", "list", "--json", "--unread")
    assert code == 0 and listed == cli("query", "alerts", "--json", "--unread")[1]
    assert set(json.loads(listed)[0]) >= {"alert_id", "alert_type", "severity", "read"}


def test_mark_by_filter_marks_only_the_unread_matches_once_and_dry_run_marks_nothing(cli, demo, project):
    before = alerts(cli)
    assert {"stock_low", "return_damaged", "sync_drift", "delivery_dead_lettered"} <= set(before)
    # The two warnings raised before the sync drift: --before is exclusive, on when each was raised.
    cut = before["sync_drift"]["time"]
    code, out, _ = cli("alerts", "read", "--severity", "warning", "--before", cut, "--dry-run", "--json")
    planned = json.loads(out)
    assert code == 0 and planned["dry_run"] and planned["marked_read"] == 2
    assert {a["alert_id"] for a in planned["alerts"]} == {before["stock_low"]["alert_id"],
                                                          before["return_damaged"]["alert_id"]}
    assert reads(demo) == []  # a dry run appends nothing

    code, out, _ = cli("alerts", "read", "--severity", "warning", "--before", cut, "--by", "ops-anna", "--json")
    done = json.loads(out)
    assert code == 0 and done["marked_read"] == 2 and done["filter"]["severity"] == "warning"
    appended = reads(demo)
    assert sorted(r["stream"] for r in appended) == sorted(f"alert:{a['alert_id']}" for a in planned["alerts"])
    assert {r["data"]["read_by"] for r in appended} == {"ops-anna"} and {r["source"] for r in appended} == \
        {"urn:dynafold:cli"}
    assert len({r["correlation_id"] for r in appended}) == 1  # one command, one correlation: `audit trace` finds both

    # Again before the projector caught up: the view still says unread, the history says read.
    code, out, _ = cli("alerts", "read", "--severity", "warning", "--before", cut, "--json")
    again = json.loads(out)
    assert code == 0 and (again["matched"], again["marked_read"], again["already_read"]) == (2, 0, 2)
    project()
    code, text, _ = cli("alerts", "read", "--severity", "warning", "--before", cut)
    assert (code, text.strip()) == (0, "no unread alert matches")
    after = alerts(cli)
    assert after["stock_low"]["read"] and after["return_damaged"]["read"] and not after["sync_drift"]["read"]
    assert after["stock_low"]["read_by"] == "ops-anna"
    assert len(reads(demo)) == 2


def test_mark_by_id_and_the_routes_share_the_service(cli, demo, project):
    before = alerts(cli)
    drift, dead = before["sync_drift"]["alert_id"], before["delivery_dead_lettered"]["alert_id"]
    marked_before = len(reads(demo))

    code, out, err = cli("alerts", "read", drift, "no-such-alert", "--json")
    assert code == 4 and out == "" and "no-such-alert" in err and len(err.strip().splitlines()) == 1
    assert len(reads(demo)) == marked_before  # one unknown id: nothing marked, not even the known one

    code, text, _ = cli("alerts", "read", drift)
    assert code == 0 and text.splitlines() == ["marked 1 alert(s) read", f"  {drift}  marked read"]
    code, text, _ = cli("alerts", "read", drift)
    assert code == 0 and text.splitlines() == ["marked 0 alert(s) read; 1 already read", f"  {drift}  already read"]

    handler = Context(demo.endpoint_url, "dynafold-", as_json=True, state_dir=demo.state_dir).root().handler("ingest")

    def post(path: str, body: dict | None) -> tuple[int, dict]:
        event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
                 "headers": {"x-api-key": "alerts-key", "content-type": "application/json"},
                 "body": json.dumps(body) if body is not None else "",
                 "requestContext": {"http": {"method": "POST", "path": path}, "requestId": f"req-{path}"}}
        answer = handler(event, LambdaContext.local("dynafold-ingest", 29))
        return answer["statusCode"], json.loads(answer["body"])

    assert post(f"/alerts/{drift}/read", {"read_by": "ops"}) == (200, {
        "alert_id": drift, "stream": f"alert:{drift}", "version": 2, "event_id": None, "already_read": True})
    assert post("/alerts/nope/read", None)[0] == 404
    assert post("/alerts/read", {})[0] == 400  # no filter would mark every alert: refused
    assert post("/alerts/read", {"severity": "loud"})[0] == 400
    assert post("/alerts/read", {"type": "delivery_dead_lettered", "before": "soon"})[0] == 400
    status, planned = post("/alerts/read", {"type": "delivery_dead_lettered", "dry_run": True})
    assert status == 200 and [a["alert_id"] for a in planned["alerts"]] == [dead] and planned["marked_read"] == 1
    status, done = post("/alerts/read", {"type": "delivery_dead_lettered", "read_by": "ops"})
    assert status == 200 and done["marked_read"] == 1 and done["alerts"][0]["version"] == 2
    status, again = post("/alerts/read", {"type": "delivery_dead_lettered"})
    assert status == 200 and (again["matched"], again["marked_read"]) == (1, 0)  # the view lags; the history knows
    assert len(reads(demo)) == marked_before + 2
    project()
    assert alerts(cli)["delivery_dead_lettered"]["read_by"] == "ops"


@pytest.mark.parametrize("argv, fragment", [
    (["alerts", "read"], "give alert ids, or filters"),
    (["alerts", "read", "some-id", "--type", "stock_low"], "not both"),
    (["alerts", "read", "--type", "stock_high"], "unknown alert type"),
    (["alerts", "read", "--severity", "loud"], "unknown severity"),
    (["alerts", "read", "--before", "yesterday-ish"], "invalid time"),
])
def test_bad_input_is_one_line_and_marks_nothing(cli, demo, argv, fragment):
    marked_before = len(reads(demo))
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and fragment in err and len(err.strip().splitlines()) == 1
    assert len(reads(demo)) == marked_before
