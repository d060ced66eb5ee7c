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
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from events.errors import DynafoldError
from processors.cli.output import emit, table
from processors.local.stack_record import StackRecord, owned, write_record
from processors.operations.tables import create_tables

GRACE_PASSED = timedelta(minutes=31)


@dataclass(frozen=True)
class DemoServing:
    """The demo's stack once its story is told: what ``serve`` gets while the console runs on it."""

    console_url: str
    api: Any  # an ApiClient signing for the demo's HTTP API
    stack: Any  # the LocalStack (its store, views, drain)


def run_demo(ctx: Any, *, stay: bool = False, console: bool = False,
             serve: Callable[[DemoServing], None] | None = None, admin_api_key: str | None = None,
             key_file: Path | None = None) -> int:
    """The story. Its stack's state (checkpoints, queues, outbox, views.json, logs) is kept in
    --state-dir when one is given, for `dynafold status --state-dir` to read afterwards, else in a
    temporary folder (logs in .dynafold/logs). With ``stay`` the stack keeps running afterwards
    (until Ctrl-C), recorded in --state-dir as `up` records its own, so the operator tools can be
    tried on its data, and the console is served on it; ``console`` serves the console with the
    consumers running until Ctrl-C, recording nothing (`make run`). ``serve`` (tests, benchmarks)
    is called with the console served and the consumers stopped, the stack up until it returns.
    ``admin_api_key`` signs in to the console (``key_file`` says where it is kept)."""
    from processors.local import services as local_services
    from processors.local import stack as local_stack
    from processors.api.deps import ApiSettings
    from processors.local.api_client import ApiClient
    from processors.adapters.aws import DEFAULT_REGION, LOCAL_ACCESS_KEY
    from processors.local.tables import local_tables, local_versions
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
        if stay:
            if ctx.endpoint_url is not None:
                raise DynafoldError("demo --stay runs on the demo's own engine: leave out --endpoint-url")
            stack.enter_context(owned(ctx.state_dir.resolve()))  # refused while `up` runs there
        if ctx.state_dir_given:
            state_dir = ctx.state_dir.resolve()
        else:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dynafold-demo-")))
        if ctx.endpoint_url is None:
            # Its own engine, whatever the shell or .dynafold say: `make run` runs the same story on
            # any machine, after any operator command (its state, views.json included, is its own).
            engine = stack.enter_context(LocalEngine(in_memory=True))
            ctx.use_engine(engine.endpoint_url, LOCAL_ACCESS_KEY, DEFAULT_REGION, "the demo's own DynamoDB Local")
            versions = local_versions(state_dir, ctx.client(), ctx.table_prefix)
            say(f"started DynamoDB Local on {engine.endpoint_url} (in memory)")
        else:
            refuse_a_running_stack(ctx)
            versions = local_versions(state_dir, ctx.client(), ctx.table_prefix) if ctx.state_dir_given \
                else ctx.versions()
        names = ctx.tables()
        created = create_tables(ctx.client(), names, warn=say)
        say(f"tables from template.yaml: {len(names.names)} ({len(created)} created)")

        logs = stack.enter_context(lambda_logs(ctx.state_dir / "logs",
                                               (*local_stack.LOGGER_NAMES, *local_services.LOGGER_NAMES)))
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
        connection = ctx.connection()
        local = local_stack.LocalStack(
            ctx.local_endpoint(), local_tables(ctx.table_prefix, settings=versions), state_dir,
            access_key=connection.access_key, region=connection.region, logs=logs, storefront_url=targets["storefront"],
            clock=clock, delivery=replace(DeliverySettings(), targets=loopback, signing_secret=secrets.get("signing")),
            secrets=secrets, shopify_sync=ShopifySyncSettings(push_location=SHOPIFY_LOCATION),
            shopify_admin=ShopifyAdminSettings(shop.url), kms_stand_in=ctx.kms_stand_in())
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
        if not (stay or console or serve):
            return 0 if not broken else 1
        served = stack.enter_context(local_services.LocalConsole(local, secrets, logs=logs).serve())
        console_url = f"{served.url}/console/"
        out = sys.stderr if ctx.as_json else sys.stdout
        signing_in = f"console on {console_url} (sign in with the admin_api_key in {key_file})"
        if stay:
            connection = ctx.connection()
            write_record(ctx.state_dir.resolve(), StackRecord(
                local.endpoint_url, connection.access_key, connection.region, ctx.table_prefix, str(state_dir),
                in_memory=True, pid=os.getpid(), api_url=server.url, command="dynafold demo --stay"))
            _stay(local, out, f"the demo's stack keeps running (in memory; its record in "
                              f"{ctx.state_dir / 'stack.json'}): try `dynafold rebuild all --switch`, `dynafold audit "
                              f"verify --all` in another shell; {signing_in}; Ctrl-C stops it")
        elif console:
            _stay(local, out, f"{signing_in}; the demo's consumers keep running, so its actions take effect; "
                              "Ctrl-C stops it")
        elif serve is not None:
            serve(DemoServing(console_url, api, local))
        return 0 if not broken else 1


def _stay(local: Any, out: Any, message: str) -> None:
    """Keep the demo's consumers running (on its fast-forwarded clock) until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = local.run_forever(stop)
    print(message, file=out, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    for thread in threads:
        thread.join(timeout=10)
    print("stopped", file=out, flush=True)


def refuse_a_running_stack(ctx: Any) -> None:
    """The demo runs its own consumers and scripted loopback receivers: beside a running `up`, whose
    consumers read the same stream, up's worker would take the demo's deliveries and dead-letter
    them (a deployed stack refuses plain-http loopback targets, and so does `up`), and the story's
    retries, fast-forwarded clock and monitor would not be the demo's."""
    from processors.local.stack_record import StackRunning, running_stack

    stack = running_stack(ctx.state_dir)
    if stack is not None and stack.endpoint_url == ctx.local_endpoint().rstrip("/"):
        raise StackRunning(f"not running the demo on {stack.endpoint_url}: `{stack.command}` (pid {stack.pid}) "
                           "runs its own consumers there, which would take the demo's webhook deliveries and refuse "
                           "its plain-http loopback targets; run `dynafold demo` on its own engine (no --endpoint-url, "
                           f"or --stay to keep it running), or send traffic to that stack's HTTP API ({stack.api_url})")


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
