"""`dynafold up|demo|monitor run|outbox|tables create`: the local stack and its tools."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from events.errors import DynafoldError
from processors.cli.context import DEFAULT_DATA_DIR, DEFAULT_STATE_DIR, EXIT_OK, AddCommand, Context, Parser


def cmd_tables_create(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.tables import create_tables

    names = ctx.tables()
    # What the engine cannot apply (DynamoDB Local: PITR, tags, SSE) goes to stderr, off the --json output.
    created = create_tables(ctx.client(), names, warn=lambda line: print(line, file=sys.stderr))
    emit({"created": created, "tables": names.names}, as_json=ctx.as_json,
         human="\n".join(f"{'created ' if n in created else 'exists  '}{n}" for n in names.names.values()))
    return EXIT_OK


def cmd_up(ctx: Context, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from processors.local import services as local_services

    from processors.local import stack as local_stack
    from processors.services.delivery_worker import DeliverySettings
    from processors.local.lambda_logs import lambda_logs
    from processors.local.engine import LocalEngine
    from processors.operations.tables import create_tables
    from processors.wiring.root import check_startup_settings

    check_startup_settings(os.environ)  # before the engine starts: a bad setting is one line, exit 2
    state_dir = Path(args.state_dir).resolve()
    engine = LocalEngine(port=args.port, in_memory=args.in_memory,
                         data_dir=None if args.in_memory else Path(args.data_dir).resolve())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    loggers = (*local_stack.LOGGER_NAMES, *local_services.LOGGER_NAMES)
    with engine, lambda_logs(state_dir / "logs", loggers) as logs:
        ctx.endpoint_url = engine.endpoint_url
        created = create_tables(ctx.client(), ctx.tables())
        run_dir = Path(tempfile.mkdtemp(prefix="dynafold-up-")) if args.in_memory else state_dir
        secrets, secrets_path = local_services.local_secrets(state_dir)
        delivery = replace(DeliverySettings.from_env(os.environ), signing_secret=secrets.get("signing"))
        stack = local_stack.LocalStack(engine.endpoint_url, ctx.view_tables(), run_dir, logs=logs, delivery=delivery,
                                       storefront_url=os.environ.get("DYNAFOLD_STOREFRONT_URL") or None)
        api = local_services.LocalApi(stack, secrets, logs=logs)
        console = local_services.LocalConsole(stack, secrets, logs=logs)
        monitor = local_services.LocalMonitor(stack, state_dir / "outbox.jsonl", logs=logs)
        with api.serve(args.api_port) as server, console.serve(args.console_port) as console_server:
            threads = stack.run_forever(stop)
            threads.append(monitor.run_every(args.monitor_interval, stop))
            where = "in memory" if args.in_memory else f"data in {engine.data_dir}"
            print(f"DynamoDB Local on {engine.endpoint_url} ({where}); {len(created)} tables created")
            print(f"HTTP API on {server.url} (secrets and the X-Api-Key in {secrets_path})")
            print(f"console on {console_server.url}/console/ (sign in with the admin_api_key in {secrets_path})")
            print(f"projector, reactor, delivery worker and error monitor (every {args.monitor_interval:g}s) are "
                  f"running; function logs in {logs.directory}, emails in {monitor.outbox}")
            print(f"  export AWS_ENDPOINT_URL_DYNAMODB={engine.endpoint_url}   # then use dynafold in another shell")
            print("Ctrl-C stops everything.", flush=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                stop.set()
            for thread in threads:
                thread.join(timeout=10)
    print("stopped")
    return EXIT_OK


def cmd_monitor_run(ctx: Context, args: argparse.Namespace) -> int:
    """One error-monitor pass now (or at --now, to see what a later run would do)."""
    from datetime import datetime, timezone

    from processors.local.services import LocalMonitor
    from processors.local.stack import LocalStack
    from processors.cli.output import emit

    moment = datetime.now(timezone.utc)
    if args.now is not None:
        try:
            moment = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            raise DynafoldError(f"--now {args.now!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    stack = LocalStack(ctx.local_endpoint(), ctx.view_tables(), Path(args.state_dir))
    outcomes = LocalMonitor(stack, Path(args.state_dir) / "outbox.jsonl", clock=lambda: moment).run()
    emit(outcomes, as_json=ctx.as_json,
         human=", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "no order is past its grace period")
    return EXIT_OK


def cmd_outbox(ctx: Context, args: argparse.Namespace) -> int:
    from processors.local.outbox import read_outbox
    from processors.cli.output import emit

    emails = read_outbox(Path(args.state_dir) / "outbox.jsonl")
    human = "\n\n".join(f"{m['time']}  to {', '.join(m['to'])}\nSubject: {m['subject']}\n{m['body']}"
                         for m in emails) or "(no emails)"
    emit(emails, as_json=ctx.as_json, human=human)
    return EXIT_OK


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from processors.local.demo import DemoServing, run_demo
    from processors.local.services import local_secrets

    state_dir = Path(args.state_dir) if args.state_dir else None
    if not args.serve:
        return run_demo(ctx, state_dir)
    secrets, secrets_path = local_secrets(state_dir or DEFAULT_STATE_DIR)

    def serve(demo: DemoServing) -> None:
        print(f"console on {demo.console_url} (sign in with the admin_api_key in {secrets_path}); "
              "Ctrl-C stops it", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        demo.stack.run_forever(stop)  # the consumers go on, so the console's actions take effect
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass

    return run_demo(ctx, state_dir, serve, admin_api_key=secrets.get("admin_api_key"))


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    up = command("up", cmd_up, "run the local stack in the foreground (DynamoDB Local, tables, stream consumers)")
    up.add_argument("--port", type=int, default=None, help="engine port (default: a free one)")
    up.add_argument("--in-memory", action="store_true", help="keep no data after exit")
    up.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="where data persists (default .dynafold/data)")
    up.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                    help="checkpoints, failure records, logs, outbox and local secrets (default .dynafold)")
    up.add_argument("--api-port", type=int, default=0, help="HTTP API port on 127.0.0.1 (default: a free one)")
    up.add_argument("--console-port", type=int, default=0, help="console port on 127.0.0.1 (default: a free one)")
    up.add_argument("--monitor-interval", type=float, default=300.0,
                    help="seconds between error-monitor runs (default 300, as the schedule on AWS)")

    monitor = sub.add_parser("monitor", help="the error monitor", parents=[common])
    monitor_sub = monitor.add_subparsers(dest="monitor_command", required=True, parser_class=Parser)
    run = command("run", cmd_monitor_run, "run the error monitor once against the local stack", monitor_sub)
    run.add_argument("--now", default=None, help="pretend it is this time (ISO 8601), e.g. to pass the grace period")
    run.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="where the outbox is (default .dynafold)")

    outbox = command("outbox", cmd_outbox, "the emails the local error monitor sent")
    outbox.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="default .dynafold")

    tables = sub.add_parser("tables", help="table management", parents=[common])
    tables_sub = tables.add_subparsers(dest="tables_command", required=True, parser_class=Parser)
    command("create", cmd_tables_create, "create the template's tables on the endpoint", tables_sub)

    demo = command("demo", cmd_demo, "start a local engine, send sample traffic through the consumers, print the views")
    demo.add_argument("--serve", action="store_true",
                      help="then serve the console on the demo's data until Ctrl-C (what `make run` does)")
    demo.add_argument("--state-dir", default=None,
                      help="keep the demo stack's checkpoints, queues, outbox and logs here, for `dynafold status "
                           "--state-dir` (default: a temporary folder; logs in .dynafold/logs); with --serve, "
                           "the admin key to sign in with is kept here too (default .dynafold)")
