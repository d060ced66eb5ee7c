"""`dynafold demo` (what `make run` calls): the whole local stack, driven through its HTTP API.

DynamoDB Local with the template's tables; the HTTP API on a loopback port; the projector,
reactor and delivery worker on the real stream and queue; a scripted webhook receiver standing
in for the message targets and the storefront; a local Shopify (its GraphQL Admin API and its
signed webhooks, processors/local/shopify_admin.py); the error monitor. The seeds' scenarios go in as
HTTP requests, the stack runs until it is idle (retry delays are skipped on a fast-forward clock, as is the
30-minute grace period before the monitor runs), and the demo ends with the four views, the one
email, the dead-letter queue, and whether every hash chain holds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets as random_secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from processors.cli.output import emit, table
from processors.operations.tables import create_tables

GRACE_PASSED = timedelta(minutes=31)


@dataclass(frozen=True)
class DemoServing:
    """The demo's stack once its story is told: what ``serve`` gets while the console runs on it."""

    console_url: str
    api: Any  # an ApiClient signing for the demo's HTTP API
    stack: Any  # the LocalStack (its store, views, drain)


def run_demo(ctx: Any, state_dir: Path | None = None, serve: Callable[[DemoServing], None] | None = None,
             admin_api_key: str | None = None) -> int:
    """The demo; ``state_dir`` keeps its stack's state (checkpoints, queues, outbox, logs) for
    `dynafold status --state-dir` to read afterwards, else a temporary folder does (logs in .dynafold/logs).
    With ``serve``, the console is started on the demo's data at the end and ``serve`` is called
    with it (the stack stays up until ``serve`` returns)."""
    from processors.local import services as local_services
    from processors.local import stack as local_stack
    from processors.api.deps import ApiSettings
    from processors.local.api_client import ApiClient
    from processors.adapters.aws import resolve_endpoint
    from processors.adapters.clock import FastForwardClock
    from processors.services.delivery_worker import DeliverySettings
    from processors.local.demo_scenario import SHOPIFY_LOCATION, echo_storefront, script_receiver, send_traffic, \
        shopify_story
    from processors.local.shopify_admin import ShopifyStandIn
    from processors.adapters.shopify_admin import ShopifyAdminSettings
    from projections.reactor.settings import ShopifySyncSettings
    from processors.services.error_monitor import MonitorSettings
    from processors.local.lambda_logs import lambda_logs
    from processors.local.engine import LocalEngine
    from processors.local.outbox import read_outbox
    from processors.adapters.outbound import TargetPolicy
    from processors.adapters.secrets import Secrets
    from processors.operations.views_report import collect
    from processors.local.webhook_receiver import WebhookReceiver
    from processors.adapters.webhook_signing import new_secret
    from projections.queries import ViewQueries

    say = (lambda line: None) if ctx.as_json else (lambda line: print(line, flush=True))
    with contextlib.ExitStack() as stack:
        ctx.endpoint_url = resolve_endpoint(ctx.endpoint_url)  # --endpoint-url, or as boto3 would find it
        if ctx.endpoint_url is None:
            engine = stack.enter_context(LocalEngine(in_memory=True))
            ctx.endpoint_url = engine.endpoint_url
            say(f"started DynamoDB Local on {engine.endpoint_url} (in memory)")
        names = ctx.tables()
        created = create_tables(ctx.client(), names, warn=say)
        say(f"tables from template.yaml: {len(names.names)} ({len(created)} created)")

        logs_dir = state_dir / "logs" if state_dir is not None else Path(".dynafold") / "logs"
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dynafold-demo-")))
        logs = stack.enter_context(lambda_logs(logs_dir, (*local_stack.LOGGER_NAMES, *local_services.LOGGER_NAMES)))
        secrets = Secrets.of(shopify=random_secrets.token_urlsafe(24), inflow=random_secrets.token_urlsafe(24),
                             signing=new_secret(os.urandom(32)),
                             admin_api_key=admin_api_key or random_secrets.token_urlsafe(24),
                             shopify_admin_token=random_secrets.token_urlsafe(24))
        loopback = TargetPolicy(allow_http=True, allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
        clock = FastForwardClock()
        # The worker signs with the fast-forwarded clock: the receiver checks timestamps against it.
        receiver = stack.enter_context(WebhookReceiver(secrets.get("signing") or "",
                                                       clock=lambda: clock.now().timestamp()))
        targets = script_receiver(receiver)
        # The local Shopify: its Admin API takes our pushes, its webhooks come back signed.
        shop = stack.enter_context(ShopifyStandIn(token=secrets.get("shopify_admin_token") or "",
                                                  app_secret=secrets.get("shopify") or "", clock=clock.now))
        local = local_stack.LocalStack(
            ctx.endpoint_url, ctx.view_tables(), state_dir, logs=logs, storefront_url=targets["storefront"],
            clock=clock, delivery=replace(DeliverySettings(), targets=loopback, signing_secret=secrets.get("signing")),
            secrets=secrets, shopify_sync=ShopifySyncSettings(push_location=SHOPIFY_LOCATION),
            shopify_admin=ShopifyAdminSettings(shop.url))
        server = stack.enter_context(
            local_services.LocalApi(local, secrets, ApiSettings(targets=loopback), logs=logs).serve())
        api = ApiClient(server.url, secrets)
        shop.webhook_url = f"{server.url}/webhooks/shopify"
        say(f"HTTP API on {server.url}; webhook targets and the storefront on {receiver.url('/')}")

        for line in send_traffic(api, targets):
            say(line)
        local.drain(wait_for_deliveries=True)
        say("storefront echoes (Shopify sends our own updates back):")
        for line in echo_storefront(api, receiver):
            say(line)
        local.drain(wait_for_deliveries=True)
        for line in shopify_story(api, shop, lambda: local.drain(wait_for_deliveries=True)):
            say(line)

        clock.advance(GRACE_PASSED.total_seconds())
        monitor = local_services.LocalMonitor(local, state_dir / "outbox.jsonl", logs=logs, clock=clock.now,
                                              settings=MonitorSettings())
        outcomes = monitor.run()
        local.drain(wait_for_deliveries=True)
        say(f"error monitor, {GRACE_PASSED.total_seconds() / 60:.0f} minutes later (fast-forwarded): "
            + (", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "nothing due"))
        say(f"the functions' JSON logs and EMF metrics: {logs.directory}/")

        chains = list(local.store.verify_log(segments=4))  # one read of the log: every chain against its head
        broken = [str(c.broken) for c in chains if c.broken]
        summary = {
            "views": collect(ViewQueries(local.client, local.tables.views)),
            "outbox": read_outbox(monitor.outbox),
            "dead_letters": local.dead_letters.read(),
            "webhooks_received": {path: len(receiver.received(path))
                                  for path in ("/orders-hook", "/down", "/storefront")},
            "shopify": {"levels": {f"{item}@{location}": level for (item, location), level in shop.levels.items()},
                        "set_quantities_calls": sum("inventorySetQuantities(" in c["query"] for c in shop.calls)},
            "streams": len(chains),
            "chains_ok": not broken,
        }
        emit(summary, as_json=ctx.as_json, human=_human(summary, broken))
        if serve is not None:
            console = stack.enter_context(local_services.LocalConsole(local, secrets, logs=logs).serve())
            serve(DemoServing(f"{console.url}/console/", api, local))
        return 0 if not broken else 1


def _human(summary: dict[str, Any], broken: list[str]) -> str:
    from processors.operations.views_report import render

    emails = "\n\n".join(f"To: {', '.join(m['to'])}\nSubject: {m['subject']}\n{m['body']}" for m in summary["outbox"])
    dead = table(summary["dead_letters"], ["delivery_stream", "target_url", "reason", "attempts", "dead_lettered_at"])
    received = ", ".join(f"{path} {count}" for path, count in summary["webhooks_received"].items())
    return "\n\n".join([
        render(summary["views"]),
        f"== Outbox (the error monitor's email): {len(summary['outbox'])}\n{emails or '(none)'}",
        f"== Dead-letter queue: {len(summary['dead_letters'])}\n{dead}",
        f"== Webhook requests received: {received}",
        f"hash chains: {summary['streams']} streams, "
        + ("all intact" if not broken else "BROKEN: " + "; ".join(broken)),
    ])
