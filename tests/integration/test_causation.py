"""Every event the system derives keeps its cause (issue 19 §A5): on the demo's traffic, each
event not ingested through the HTTP API names the event that caused it and carries that cause's
correlation, up to an ingested request. So `audit trace` can answer "what did this event cause,
and what caused it?" for the monitor's email as for a webhook delivery."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
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
