"""`dynafold up|demo|monitor run|outbox|tables create`: the local stack and its tools."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from events.errors import DynafoldError
from processors.cli.context import EXIT_OK, AddCommand, Context, Parser


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

    from processors.adapters.aws import DEFAULT_REGION, LOCAL_ACCESS_KEY, dynamodb_client
    from processors.cli.output import to_json
    from processors.local import services as local_services
    from processors.local import stack as local_stack
    from processors.local.engine import LocalEngine, PortInUse, port_is_free
    from processors.local.lambda_logs import lambda_logs
    from processors.local.stack_record import StackRecord, owned, read_record, write_record
    from processors.local.tables import local_tables, local_versions
    from processors.operations.tables import create_tables
    from processors.services.delivery_worker import DeliverySettings
    from processors.wiring.root import check_startup_settings

    check_startup_settings(os.environ)  # before the engine starts: a bad setting is one line, exit 2
    state_dir = ctx.state_dir.resolve()
    with owned(state_dir):  # a second `up` on this directory is refused while this one runs
        last = read_record(state_dir)
        # The same database and, when free, the same ports as the last run: DynamoDB Local keeps a
        # database per access key and region (never the shell's AWS_ACCESS_KEY_ID), and an endpoint
        # that stays put keeps working in other shells.
        access_key, region = (last.access_key, last.region) if last else (LOCAL_ACCESS_KEY, DEFAULT_REGION)
        port = args.port or (last.port if last and port_is_free(last.port) else None)
        api_port = args.api_port
        if api_port is None:
            api_port = last.api_port if last and last.api_port and port_is_free(last.api_port) else 0
        elif api_port and not port_is_free(api_port):  # said before the engine starts, not after
            raise PortInUse(f"the HTTP API cannot listen on 127.0.0.1:{api_port}: it is in use "
                            "(choose another --api-port, or none)")
        if args.console_port and not port_is_free(args.console_port):
            raise PortInUse(f"the console cannot listen on 127.0.0.1:{args.console_port}: it is in use "
                            "(choose another --console-port, or none)")
        run_dir = _fresh_dir(state_dir / "in-memory") if args.in_memory else state_dir
        data_dir = None if args.in_memory else Path(args.data_dir or state_dir / "data").resolve()
        engine = LocalEngine(port=port, in_memory=args.in_memory, data_dir=data_dir)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        loggers = (*local_stack.LOGGER_NAMES, *local_services.LOGGER_NAMES)
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(signal.signal, signal.SIGTERM, previous)
            cleanup.enter_context(engine)
            logs = cleanup.enter_context(lambda_logs(state_dir / "logs", loggers))
            client = dynamodb_client(engine.endpoint_url, access_key=access_key, region=region)
            created = create_tables(client, ctx.tables())
            tables = local_tables(ctx.table_prefix, settings=local_versions(run_dir, client, ctx.table_prefix))
            secrets, secrets_path = local_services.local_secrets(state_dir)
            delivery = replace(DeliverySettings.from_env(os.environ), signing_secret=secrets.get("signing"))
            stack = local_stack.LocalStack(engine.endpoint_url, tables, run_dir, access_key=access_key, region=region,
                                           logs=logs, delivery=delivery, kms_stand_in=ctx.kms_stand_in(),
                                           storefront_url=os.environ.get("DYNAFOLD_STOREFRONT_URL") or None)
            api = local_services.LocalApi(stack, secrets, logs=logs)
            console = local_services.LocalConsole(stack, secrets, logs=logs)
            monitor = local_services.LocalMonitor(stack, state_dir / "outbox.jsonl", logs=logs)
            with api.serve(api_port) as server, console.serve(args.console_port) as console_server:
                record = StackRecord(engine.endpoint_url, access_key, region, ctx.table_prefix, str(run_dir),
                                     args.in_memory, os.getpid(), server.url)
                write_record(state_dir, record)
                threads = stack.run_forever(stop)
                threads.append(monitor.run_every(args.monitor_interval, stop))
                if ctx.as_json:
                    print(to_json({"endpoint_url": engine.endpoint_url, "api_url": server.url,
                                   "in_memory": args.in_memory, "data_dir": str(data_dir) if data_dir else None,
                                   "console_url": f"{console_server.url}/console/",
                                   "state_dir": str(state_dir), "run_dir": str(run_dir), "tables_created": created,
                                   "secrets": str(secrets_path), "logs": str(logs.directory),
                                   "outbox": str(monitor.outbox)}), flush=True)
                else:
                    where = "in memory" if args.in_memory else f"data in {engine.data_dir}"
                    print(f"DynamoDB Local on {engine.endpoint_url} ({where}); {len(created)} tables created")
                    print(f"HTTP API on {server.url} (secrets and the X-Api-Key in {secrets_path})")
                    print(f"console on {console_server.url}/console/ (sign in with the admin_api_key in "
                          f"{secrets_path})")
                    print(f"projector, reactor, delivery worker and error monitor (every {args.monitor_interval:g}s) "
                          f"are running; function logs in {logs.directory}, emails in {monitor.outbox}")
                    print(f"other dynafold commands given --state-dir {state_dir} (the default here) talk to "
                          f"this stack, which it records in {state_dir / 'stack.json'}")
                    print("Ctrl-C stops everything.", flush=True)
                try:
                    while not stop.wait(0.5):
                        pass
                except KeyboardInterrupt:
                    stop.set()
                for thread in threads:
                    thread.join(timeout=10)
    print("stopped", file=sys.stderr if ctx.as_json else sys.stdout)
    return EXIT_OK


def _fresh_dir(path: Path) -> Path:
    """An in-memory engine starts empty: so does the state that describes it."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cmd_monitor_run(ctx: Context, args: argparse.Namespace) -> int:
    """One error-monitor pass now (or at --now, to see what a later run would do)."""
    from datetime import datetime, timezone

    from processors.cli.output import emit
    from processors.local import services as local_services
    from processors.local.lambda_logs import lambda_logs

    moment = datetime.now(timezone.utc)
    if args.now is not None:
        try:
            moment = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            raise DynafoldError(f"--now {args.now!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    stack = ctx.local_stack()
    # The invocation's JSON logs and EMF lines go to the function's log file, as `up` does.
    with lambda_logs(ctx.state_dir / "logs", local_services.LOGGER_NAMES) as logs:
        monitor = local_services.LocalMonitor(stack, ctx.state_dir / "outbox.jsonl", logs=logs, clock=lambda: moment)
        outcomes = monitor.run()
    emit(outcomes, as_json=ctx.as_json,
         human=", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "no order is past its grace period")
    return EXIT_OK


def cmd_outbox(ctx: Context, args: argparse.Namespace) -> int:
    from processors.local.outbox import read_outbox
    from processors.cli.output import emit

    emails = read_outbox(ctx.state_dir / "outbox.jsonl")
    human = "\n\n".join(f"{m['time']}  to {', '.join(m['to'])}\nSubject: {m['subject']}\n{m['body']}"
                         for m in emails) or "(no emails)"
    emit(emails, as_json=ctx.as_json, human=human)
    return EXIT_OK


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from processors.local.demo import run_demo
    from processors.local.services import local_secrets

    if not (args.stay or args.serve):
        return run_demo(ctx)
    # The console's sign-in key: the one `dynafold up` gives, kept in the state directory.
    secrets, secrets_path = local_secrets(ctx.state_dir)
    return run_demo(ctx, stay=args.stay, console=True, admin_api_key=secrets.get("admin_api_key"),
                    key_file=secrets_path)


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    up = command("up", cmd_up, "run the local stack in the foreground (DynamoDB Local, tables, stream consumers); "
                               "it owns --state-dir while it runs")
    up.add_argument("--port", type=int, default=None,
                    help="engine port (default: the last run's, when free; else a free one)")
    up.add_argument("--in-memory", action="store_true", help="keep no data after exit")
    up.add_argument("--data-dir", default=None, help="where data persists (default <state dir>/data)")
    up.add_argument("--api-port", type=int, default=None,
                    help="HTTP API port on 127.0.0.1 (default: the last run's, when free; else a free one)")
    up.add_argument("--console-port", type=int, default=0, help="console port on 127.0.0.1 (default: a free one)")
    up.add_argument("--monitor-interval", type=float, default=300.0,
                    help="seconds between error-monitor runs (default 300, as the schedule on AWS)")

    monitor = sub.add_parser("monitor", help="the error monitor", parents=[common])
    monitor_sub = monitor.add_subparsers(dest="monitor_command", required=True, parser_class=Parser)
    run = command("run", cmd_monitor_run, "run the error monitor once against the local stack", monitor_sub)
    run.add_argument("--now", default=None, help="pretend it is this time (ISO 8601), e.g. to pass the grace period")

    command("outbox", cmd_outbox, "the emails the local error monitor sent")

    tables = sub.add_parser("tables", help="table management", parents=[common])
    tables_sub = tables.add_subparsers(dest="tables_command", required=True, parser_class=Parser)
    command("create", cmd_tables_create, "create the template's tables on the endpoint", tables_sub)

    demo = command("demo", cmd_demo, "the seeds' story on its own in-memory engine (or --endpoint-url): traffic "
                                     "through the HTTP API and the consumers, then the views (what `make run` runs)")
    demo.add_argument("--stay", action="store_true",
                      help="keep the demo's stack running afterwards (until Ctrl-C), recorded in --state-dir like "
                           "`dynafold up`, to try the operator tools and the console on its data")
    demo.add_argument("--serve", action="store_true",
                      help="then serve the console on the demo's data, its consumers running, until Ctrl-C (what "
                           "`make run` does; unlike --stay it records nothing in --state-dir)")
