"""The `dynafold` command line. Exit 0 on success, 2 on bad input, 3 on a version conflict."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from events import catalogue
from events.envelope import NewEvent, RecordedEvent, format_time
from events.errors import DynafoldError, VersionConflict
from processors.local.engine import EngineUnavailable
from processors.local.tables import local_tables

EXIT_OK, EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_FAILED = 0, 2, 3, 1
DEFAULT_STATE_DIR = Path(".dynafold")
DEFAULT_DATA_DIR = DEFAULT_STATE_DIR / "data"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not a usage dump
        self.exit(EXIT_BAD_INPUT, f"dynafold: {message}\n")


@dataclass
class Context:
    endpoint_url: str | None
    table_prefix: str
    as_json: bool

    def client(self) -> Any:
        from processors.adapters.aws import dynamodb_client

        return dynamodb_client(self.endpoint_url)

    def tables(self) -> Any:
        from processors.operations.tables import TableNames

        return TableNames.with_prefix(self.table_prefix)

    def view_tables(self) -> Any:
        """Event, idempotency and the active view tables (see `dynafold rebuild --switch`)."""

        return local_tables(self.table_prefix)

    def store(self) -> Any:
        from events.store import EventStore

        names = self.tables()
        return EventStore(self.client(), names.events, names.idempotency)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", default=argparse.SUPPRESS,
                        help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL / AWS)")
    parser.add_argument("--table-prefix", default=argparse.SUPPRESS, help="table name prefix (default dynafold-)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output for scripts")


def _event_rows(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    return [
        {
            "stream": e.stream, "version": e.version, "time": format_time(e.time), "type": e.type,
            "id": e.id, "data": e.data.model_dump(mode="json"),
        }
        for e in events
    ]


def _print_events(ctx: Context, events: Sequence[RecordedEvent]) -> None:
    from processors.cli.output import emit, table

    emit([e.to_json() for e in events], as_json=ctx.as_json,
         human=table(_event_rows(events), ["stream", "version", "time", "type", "data"], max_width=70))


# ----------------------------------------------------------------------------- commands

def cmd_types(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table

    schemas = catalogue.json_schemas()
    rows = [{"type": s["type"], "stream": s["stream"], "fields": ", ".join(s["schema"].get("properties", {})),
             "description": s["description"]} for s in schemas]
    emit(schemas, as_json=ctx.as_json, human=table(rows, ["type", "stream", "fields", "description"], max_width=60))
    return EXIT_OK


def cmd_tables_create(ctx: Context, args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.tables import create_tables

    names = ctx.tables()
    # What the engine cannot apply (DynamoDB Local: PITR, tags, SSE) goes to stderr, off the --json output.
    created = create_tables(ctx.client(), names, warn=lambda line: print(line, file=sys.stderr))
    emit({"created": created, "tables": names.names}, as_json=ctx.as_json,
         human="\n".join(f"{'created ' if n in created else 'exists  '}{n}" for n in names.names.values()))
    return EXIT_OK


def cmd_append(ctx: Context, args: argparse.Namespace) -> int:
    from events.store import parse_expected_version
    from processors.cli.output import emit

    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as error:
        raise DynafoldError(f"--data is not valid JSON: {error.msg} at position {error.pos}") from None
    except RecursionError:
        raise DynafoldError("--data is nested too deeply to be event data") from None
    event = NewEvent(type=args.type, data=data, source=args.source, correlation_id=args.correlation_id)
    result = ctx.store().append(args.stream, [event], parse_expected_version(args.expected_version),
                                idempotency_key=args.idempotency_key)
    payload = {"stream": result.stream, "versions": list(result.versions), "event_ids": list(result.event_ids),
               "deduplicated": result.deduplicated}
    human = f"{result.stream} v{result.first_version} {result.event_ids[0]}" + (
        " (already appended under this idempotency key)" if result.deduplicated else "")
    emit(payload, as_json=ctx.as_json, human=human)
    return EXIT_OK


def cmd_read(ctx: Context, args: argparse.Namespace) -> int:
    if args.from_version < 1:
        raise DynafoldError(f"--from must be >= 1, got {args.from_version}")
    _print_events(ctx, ctx.store().read_stream(args.stream, from_version=args.from_version))
    return EXIT_OK


def cmd_up(ctx: Context, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from processors.local import services as local_services

    from processors.local import stack as local_stack
    from processors.services.delivery_worker import DeliverySettings
    from processors.local.lambda_logs import lambda_logs
    from processors.local.engine import LocalEngine
    from processors.operations.tables import create_tables

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
        monitor = local_services.LocalMonitor(stack, state_dir / "outbox.jsonl", logs=logs)
        with api.serve(args.api_port) as server:
            threads = stack.run_forever(stop)
            threads.append(monitor.run_every(args.monitor_interval, stop))
            where = "in memory" if args.in_memory else f"data in {engine.data_dir}"
            print(f"DynamoDB Local on {engine.endpoint_url} ({where}); {len(created)} tables created")
            print(f"HTTP API on {server.url} (secrets and the X-Api-Key in {secrets_path})")
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
    stack = LocalStack(_endpoint(ctx), ctx.view_tables(), Path(args.state_dir))
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


def _endpoint(ctx: Context) -> str:
    from processors.adapters.aws import resolve_endpoint

    endpoint = resolve_endpoint(ctx.endpoint_url)
    if endpoint is None:
        raise DynafoldError("give --endpoint-url (or AWS_ENDPOINT_URL_DYNAMODB): the local stack's engine, "
                            "as `dynafold up` prints it")
    return endpoint


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from processors.local.demo import run_demo

    return run_demo(ctx)


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    _common(common)
    parser = _Parser(prog="dynafold", description="Event-sourced stream processor on DynamoDB Streams.",
                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, handler: Callable[[Context, argparse.Namespace], int], help_text: str,
                parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    up = command("up", cmd_up, "run the local stack in the foreground (DynamoDB Local, tables, stream consumers)")
    up.add_argument("--port", type=int, default=None, help="engine port (default: a free one)")
    up.add_argument("--in-memory", action="store_true", help="keep no data after exit")
    up.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="where data persists (default .dynafold/data)")
    up.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                    help="checkpoints, failure records, logs, outbox and local secrets (default .dynafold)")
    up.add_argument("--api-port", type=int, default=0, help="HTTP API port on 127.0.0.1 (default: a free one)")
    up.add_argument("--monitor-interval", type=float, default=300.0,
                    help="seconds between error-monitor runs (default 300, as the schedule on AWS)")

    monitor = sub.add_parser("monitor", help="the error monitor", parents=[common])
    monitor_sub = monitor.add_subparsers(dest="monitor_command", required=True, parser_class=_Parser)
    run = command("run", cmd_monitor_run, "run the error monitor once against the local stack", monitor_sub)
    run.add_argument("--now", default=None, help="pretend it is this time (ISO 8601), e.g. to pass the grace period")
    run.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="where the outbox is (default .dynafold)")

    outbox = command("outbox", cmd_outbox, "the emails the local error monitor sent")
    outbox.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="default .dynafold")

    tables = sub.add_parser("tables", help="table management", parents=[common])
    tables_sub = tables.add_subparsers(dest="tables_command", required=True, parser_class=_Parser)
    command("create", cmd_tables_create, "create the template's tables on the endpoint", tables_sub)

    append = command("append", cmd_append, "append one event to a stream")
    append.add_argument("stream", help="stream id, e.g. sku:PROD-001")
    append.add_argument("type", help="event type, e.g. dynafold.inventory.buffer_set.v1 (see `dynafold types`)")
    append.add_argument("--data", required=True, help="event data as a JSON object")
    append.add_argument("--expected-version", default="any", help="N, none or any (default any)")
    append.add_argument("--idempotency-key", default=None)
    append.add_argument("--source", default="urn:dynafold:cli")
    append.add_argument("--correlation-id", default=None)

    read = command("read", cmd_read, "print a stream's events in order")
    read.add_argument("stream")
    read.add_argument("--from", dest="from_version", type=int, default=1, help="first version (default 1)")

    command("types", cmd_types, "every event type with its JSON Schema")
    command("demo", cmd_demo, "start a local engine, send sample traffic through the consumers, print the views")

    from processors.cli.query import register as register_queries

    register_queries(sub, command, common)

    from processors.cli.targets import register as register_targets

    register_targets(sub, command, common)

    from processors.cli.shopify import register as register_shopify

    register_shopify(sub, command, common)

    from processors.cli.rebuild import register as register_rebuild

    register_rebuild(sub, command, common)

    from processors.cli.audit import register as register_audit

    register_audit(sub, command, common)

    from processors.cli.cost import register as register_cost

    register_cost(sub, command, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a one-line usage error
        return int(exit_.code or 0)
    ctx = Context(
        endpoint_url=getattr(args, "endpoint_url", None),
        table_prefix=getattr(args, "table_prefix", None) or "dynafold-",
        as_json=getattr(args, "json", False),
    )
    try:
        return args.handler(ctx, args)
    except VersionConflict as error:
        print(f"dynafold: {error}", file=sys.stderr)
        return EXIT_CONFLICT
    except EngineUnavailable as error:
        print(f"dynafold: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (DynafoldError, ValueError) as error:
        print(f"dynafold: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _aws_errors() as error:
        print(f"dynafold: {_describe_aws_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    except RecursionError:  # input nested past what can be validated or stored (e.g. --data, a file)
        print("dynafold: the input is nested too deeply", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OverflowError as error:  # a number or a time out of any usable range (e.g. --now near year 1)
        print(f"dynafold: a value is out of range: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _describe_aws_error(error: BaseException) -> str:
    from botocore.exceptions import ClientError, EndpointConnectionError

    if isinstance(error, EndpointConnectionError):
        return f"cannot reach DynamoDB at {error.kwargs.get('endpoint_url')}: is `dynafold up` running?"
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        if err.get("Code") == "ResourceNotFoundException":
            return f"{err.get('Message')}: create the tables first (`dynafold tables create`)"
        return f"{err.get('Code')}: {err.get('Message')}"
    return str(error)


if __name__ == "__main__":
    sys.exit(main())
