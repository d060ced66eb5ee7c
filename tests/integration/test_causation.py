"""Every event the system derives keeps its cause (issue 19 §A5): on the demo's traffic, each
event not ingested through the HTTP API names the event that caused it and carries that cause's
correlation, up to an ingested request. So `audit trace` can answer "what did this event cause,
and what caused it?" for the monitor's email as for a webhook delivery."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events import shopify
from events.envelope import RecordedEvent
from events.items import from_item
from processors.api import admin, messages, webhooks
from processors.cli.main import main
from tests.conftest import LocalDynamo, new_database

# Where the HTTP API appends what it is sent: the roots every derived event must lead back to.
INGESTED = {webhooks.INFLOW_SOURCE, shopify.SOURCE, messages.SOURCE, admin.SOURCE}


@pytest.fixture(scope="module")
def demo(dynamodb_local: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalDynamo, Any]]:
    """The demo's traffic, run once into its own database: (the database, a CLI runner on it)."""
    database = new_database(dynamodb_local.endpoint_url)
    directory = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", database.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", "local")
        patch.chdir(directory)  # the demo keeps the functions' logs under ./.dynafold/logs

        def cli(*argv: str) -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*argv, "--endpoint-url", dynamodb_local.endpoint_url, "--table-prefix", "test-"])
            return code, out.getvalue(), err.getvalue()

        code, out, err = cli("demo", "--json")
        assert code == 0, (out[-2000:], err[-2000:])
        yield database, cli


def logged(database: LocalDynamo) -> list[RecordedEvent]:
    return [from_item(item) for item in database.client.get_paginator("scan").paginate(
        TableName=database.names.events).build_full_result()["Items"]]


def test_every_derived_event_of_the_demo_traces_back_to_an_ingested_request(demo):
    database, _ = demo
    events = logged(database)
    by_id = {event.id: event for event in events}
    derived = [event for event in events if event.source not in INGESTED]
    assert {"urn:dynafold:reactor", "urn:dynafold:delivery-worker", "urn:dynafold:error-monitor"} <= {
        event.source for event in derived}
    problems = []
    for event in derived:
        hop, seen = event, set()
        while hop.source not in INGESTED:
            seen.add(hop.id)
            cause = by_id.get(hop.causation_id or "")
            if cause is None:
                problems.append(f"{event.type} on {event.stream} v{event.version} ({event.source}): "
                                f"{hop.type} names no cause in the log ({hop.causation_id})")
                break
            if cause.correlation_id != hop.correlation_id:
                problems.append(f"{hop.type} on {hop.stream} v{hop.version}: correlation {hop.correlation_id}, "
                                f"its cause's {cause.correlation_id}")
                break
            assert cause.id not in seen, f"causation cycle at {cause.id}"
            hop = cause
    assert problems == []


def test_the_monitors_email_traces_back_to_the_inflow_request(demo):
    database, _ = demo
    events = logged(database)
    by_id = {event.id: event for event in events}
    [email] = [e for e in events if e.type == "dynafold.orders.errors_notified.v1"]
    chain = [email]
    while chain[-1].causation_id:
        chain.append(by_id[chain[-1].causation_id])
    assert chain[-1].source == webhooks.INFLOW_SOURCE and chain[-1].type == "dynafold.orders.validated.v1"
    assert [e.type.split(".")[2] for e in chain][:2] == ["errors_notified", "notification_claimed"]
    assert {e.correlation_id for e in chain} == {chain[-1].correlation_id}


def email_event(database: LocalDynamo) -> RecordedEvent:
    [email] = [e for e in logged(database) if e.type == "dynafold.orders.errors_notified.v1"]
    return email


def test_audit_trace_of_the_email_names_the_inflow_request_and_what_the_email_caused(demo):
    database, cli = demo
    email = email_event(database)
    code, out, err = cli("audit", "trace", email.id, "--json")
    assert code == 0, err
    answer = json.loads(out)
    events = {e["id"]: e for e in answer["facts"]["events"]}
    assert answer["facts"]["matched"] == "event" and events[email.id]["relation"] == "asked"
    causes = [e for e in answer["facts"]["events"] if e["relation"] == "cause"]
    assert [(e["type"], e["source"]) for e in causes][:1] == [("dynafold.orders.validated.v1", "urn:dynafold:inflow")]
    assert causes[-1]["type"] == "dynafold.orders.notification_claimed.v1" and email.causation_id == causes[-1]["id"]
    # What the email caused: the order_errors_notified alert, raised by the reactor.
    effects = [e for e in answer["facts"]["events"] if e["relation"] == "effect"]
    assert [e["type"] for e in effects] == ["dynafold.alerts.raised.v1"] and effects[0]["causation_id"] == email.id
    times = [e["time"] for e in answer["facts"]["events"]]
    assert times == sorted(times) and [e["depth"] for e in causes] == list(range(len(causes)))
    assert "which came in from InFlow's webhook" in answer["answer"] and "it caused 1 event." in answer["answer"]
    code, human, _ = cli("audit", "trace", email.id)
    assert code == 0 and human.startswith("orders.errors_notified on order:") and "What caused it:" in human


def test_audit_trace_of_a_request_is_every_event_it_caused(demo):
    database, cli = demo
    email = email_event(database)
    code, out, _ = cli("audit", "trace", email.correlation_id, "--json")
    answer = json.loads(out)
    in_request = sorted(e.id for e in logged(database) if e.correlation_id == email.correlation_id)
    assert code == 0 and answer["facts"]["matched"] in ("event", "correlation")
    assert sorted(e["id"] for e in answer["facts"]["events"]) == in_request


@pytest.mark.parametrize("asked, code, line", [
    ("no-such-event", 4, "not found: no event and no request with id 'no-such-event'"),
    ("", 2, "give an event id or a correlation id"),
    ("x" * 3000, 2, "an id has at most 2048 bytes"),
])
def test_audit_trace_of_an_unknown_or_empty_id_is_one_line_and_its_exit_code(demo, asked, code, line):
    """Issue 19: an unknown id printed (none) and exited 0; an empty one a DynamoDB ValidationException."""
    _, cli = demo
    got, out, err = cli("audit", "trace", asked)
    [printed] = err.strip().splitlines()
    assert (got, out) == (code, "") and printed.startswith(f"dynafold: {line}")


def test_the_trace_route_answers_from_the_same_read_service_as_the_cli(demo):
    from processors.adapters.secrets import Secrets
    from processors.api.app import make_handler
    from processors.local.api_client import ApiClient
    from processors.local.http_server import LocalApiServer
    from processors.local.stack import LocalStack
    from processors.local.tables import local_tables

    database, cli = demo
    email = email_event(database)
    secrets = Secrets.of(admin_api_key="trace-key")
    stack = LocalStack(database.endpoint_url, local_tables("test-", versions={}), Path(".dynafold"),
                       access_key=database.access_key, secrets=secrets)
    with LocalApiServer(make_handler(stack.root.api_deps)) as server:
        api = ApiClient(server.url, secrets)
        status, body = api.admin("GET", f"/trace/{email.id}")
        assert status == 200 and body == json.loads(cli("audit", "trace", email.id, "--json")[1])
        status, body = api.admin("GET", "/trace/no-such-event")
        assert status == 404 and body["error"] == "not found: no event and no request with id 'no-such-event'"
        assert api.call("GET", f"/trace/{email.id}")[0] == 401


def test_dynafold_logs_follows_one_request_across_the_functions_that_handled_it(demo):
    """Issue 19 §A7: the reactor logged the event id as its correlation_id and the delivery worker
    its cause's id, so a request could not be followed through the logs."""
    database, cli = demo
    [received] = [e for e in logged(database) if e.type == "dynafold.delivery.message_received.v1"
                  and e.stream == "delivery:user123:msg-0001"]
    code, out, err = cli("logs", "--since", "1d", "--correlation", received.correlation_id, "--json")
    assert code == 0, err
    lines = json.loads(out)
    assert {"ingest", "projector", "reactor", "delivery-worker"} <= {line["function"] for line in lines}
    assert all(received.correlation_id in line["line"] for line in lines)
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    code, out, _ = cli("logs", "--since", "1d", "--function", "delivery-worker", "--json")
    assert code == 0 and {line["function"] for line in json.loads(out)} == {"delivery-worker"}
