"""Issue 19 §A: the support questions answered on the demo's traffic (processors/local/demo_scenario.py),
by the CLI (`dynafold explain ...`) and the HTTP read routes, which get the same read service from
the composition root."""

from __future__ import annotations

import json

import pytest

from processors.adapters.secrets import Secrets
from processors.cli.main import main
from processors.local.api_client import ApiClient
from processors.local.demo_scenario import SHOPIFY_ITEM, SHOPIFY_LOCATION, SHOPIFY_SKU
from processors.local.services import LocalApi
from processors.local.stack import LocalStack
from processors.local.tables import local_tables


@pytest.fixture
def demo(local_dynamo, monkeypatch, capsys, tmp_path):
    """The demo's traffic in a fresh database; returns the CLI against it: run(*argv) -> (exit code, stdout)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("DYNAFOLD_SHOPIFY_PUSH_LOCATION", SHOPIFY_LOCATION)  # the demo stack's push location

    def run(*argv: str) -> tuple[int, str]:
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
        return code, capsys.readouterr().out

    assert run("demo", "--json")[0] == 0
    return run


def test_why_shopify_shows_what_it_shows_for_a_sku(demo, local_dynamo, tmp_path):
    """The demo's Shopify story: Shopify showed 0 where we counted 12 (pushed), echoed the push,
    then a merchant typed 30 (drift +18, set back to 12), and echoed that too."""
    code, text = demo("explain", "sku", SHOPIFY_SKU)
    assert code == 0
    assert text.startswith(f"Shopify shows 12 on item {SHOPIFY_ITEM} for {SHOPIFY_SKU}, as it should: we have 12 "
                           "available (physical 12 - buffer 0).\n")
    assert "  Physical 12, buffer 0 held back: 12 available to sell" in text
    assert f"\nShopify item {SHOPIFY_ITEM}:\n  At location {SHOPIFY_LOCATION} (the push location): 12, as " in text
    assert "(compare-and-set against 30) so it shows 12, answering Shopify's level 30 of item" in text
    assert "applied: Shopify holds 12 there (settled at " in text
    assert "  2 level update(s) were our own pushes coming back" in text
    assert "showed 30 where it should have shown 12 (drift +18): a sync_drift alert" in text

    code, out = demo("explain", "sku", SHOPIFY_SKU, "--json")
    answer = json.loads(out)
    assert code == 0 and answer["subject"] == f"sku:{SHOPIFY_SKU}"
    facts = answer["facts"]
    assert (facts["physical"], facts["available"], facts["counted"], facts["echoes_ignored"]) == (12, 12, True, 2)
    [item] = facts["items"]
    assert (item["inventory_item_id"], item["shopify_available"], item["shopify_expected"]) == (SHOPIFY_ITEM, 12, 12)
    assert item["last_push"]["outcome"] == "applied"
    assert [(d["shown"], d["expected"], d["drift"], d["outcome"]) for d in facts["drifts"]] == [(30, 12, 18, "applied")]
    assert len(answer["event_ids"]) >= 6

    stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-"), tmp_path / "api",
                       access_key=local_dynamo.access_key)
    secrets = Secrets.of(admin_api_key="support-key")
    with LocalApi(stack, secrets).serve() as server:
        api = ApiClient(server.url, secrets)
        assert api.admin("GET", f"/inventory/{SHOPIFY_SKU}/explanation") == (200, answer)  # the same answer
        status, body = api.admin("GET", "/inventory/NOPE/explanation")
        assert (status, body["error"]) == (404, "not found: SKU 'NOPE'")
        assert ApiClient(server.url, Secrets.of(admin_api_key="wrong")).admin("GET", "/inventory/X/explanation")[0] == 403
    assert demo("explain", "sku", "NOPE")[0] == 4
