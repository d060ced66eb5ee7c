"""What every `dynafold` command shares: its context (endpoint, tables, output), exit codes, the
one-line parser and the argument types. Command modules import this, never `main`, so the
command line is assembled in one direction: main -> command modules -> context."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from events.errors import DynafoldError, NotFound
from processors.local.stack_record import StackRecord
from projections import unit as _unit
from projections.unit import InvalidQuery

# 0 ok, 1 failed (or found broken), 2 bad input, 3 conflict (a version conflict, or a rebuild of the
# view already running), 4 not found (the routes' 404), 130 interrupted (Ctrl-C: 128 + SIGINT, as a
# shell reports it; a rebuild or an import resumes when run again).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
DEFAULT_STATE_DIR = Path(".dynafold")


class Interrupted(DynafoldError):
    """Ctrl-C in a command that resumes where it stopped (a rebuild, an import)."""

    def __init__(self, at: str) -> None:
        super().__init__(f"interrupted at {at}; run the same command to resume")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not a usage dump
        self.exit(EXIT_BAD_INPUT, f"dynafold: {message}\n")


@dataclass(frozen=True)
class Connection:
    """Where a command's DynamoDB requests go, and why there."""

    endpoint_url: str | None  # None: AWS
    access_key: str | None  # None: the environment's credentials
    region: str | None  # None: the environment's region
    stack: StackRecord | None  # the running local stack it belongs to, if any
    described: str


@dataclass
class Context:
    endpoint_url: str | None
    table_prefix: str
    as_json: bool
    state_dir: Path = DEFAULT_STATE_DIR
    state_dir_given: bool = False  # --state-dir on the command line (the demo keeps its state there then)
    _connection: Connection | None = field(default=None, repr=False)

    def connection(self) -> Connection:
        """The endpoint and credentials: --endpoint-url, else boto3's environment variables, else
        the local stack running from --state-dir (`dynafold up` records its engine and the
        credentials that select its database), else AWS. Any of them meets the running stack's
        credentials when it is that stack's engine. Unless --endpoint-url named it, the choice is
        said once on stderr (stdout stays the command's answer)."""
        if self._connection is None:
            self._connection = self._connect()
            if self.endpoint_url is None:
                print(f"dynafold: {self._connection.described}", file=sys.stderr, flush=True)
        return self._connection

    def _connect(self) -> Connection:
        from processors.adapters.aws import default_region, resolve_endpoint
        from processors.local.stack_record import read_record, running_stack

        given = resolve_endpoint(self.endpoint_url)
        stack = running_stack(self.state_dir)
        if stack is not None and (given is None or given.rstrip("/") == stack.endpoint_url):
            return Connection(stack.endpoint_url, stack.access_key, stack.region, stack,
                              f"{stack.describe()}, the stack of {self.state_dir}")
        if given is not None:
            source = "--endpoint-url" if self.endpoint_url else "from AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL"
            keys = ("the access key in AWS_ACCESS_KEY_ID" if os.environ.get("AWS_ACCESS_KEY_ID")
                    else "the local access key")
            return Connection(given, None, None, None,
                              f"DynamoDB at {given} ({source}; on DynamoDB Local, {keys} selects the database)")
        idle = read_record(self.state_dir)
        note = f"; the local stack of {self.state_dir} is not running (`dynafold up`)" if idle else ""
        return Connection(None, None, None, None, f"DynamoDB on AWS ({default_region()}){note}")

    def use_engine(self, endpoint_url: str, access_key: str, region: str, described: str) -> None:
        """Talk to an engine this command started itself (`up`, the demo's own)."""
        self._connection = Connection(endpoint_url, access_key, region, None, described)

    def client(self) -> Any:
        from processors.adapters.aws import dynamodb_client

        connection = self.connection()
        return dynamodb_client(connection.endpoint_url, access_key=connection.access_key, region=connection.region)

    def client_factory(self) -> Callable[[], Any]:
        """How another process connects as this context does (picklable)."""
        from processors.adapters.aws import dynamodb_client

        connection = self.connection()
        return functools.partial(dynamodb_client, connection.endpoint_url, access_key=connection.access_key,
                                 region=connection.region)

    @property
    def run_dir(self) -> Path:
        """Where the stack's own state lives (views.json, rebuild progress, checkpoints, queues): the
        running stack's (an in-memory one keeps a fresh directory), else --state-dir."""
        stack = self.connection().stack
        return Path(stack.run_dir) if stack is not None else self.state_dir

    def tables(self) -> Any:
        from processors.operations.tables import TableNames

        return TableNames.with_prefix(self.table_prefix)

    def versions(self) -> Any:
        """The active view versions of this stack: its views.json, stamped with its database."""
        from processors.local.tables import local_versions

        return local_versions(self.run_dir, self.client(), self.table_prefix)

    def view_tables(self) -> Any:
        """The log's tables and the active view tables (see `dynafold rebuild --switch`)."""
        from processors.local.tables import local_tables

        return local_tables(self.table_prefix, settings=self.versions())

    def store(self) -> Any:
        """The event log as the functions see it: personal values sealed on append and revealed
        on read, with the local stack's stand-in for KMS (a local engine) or KMS."""
        from events.sealing import PersonalDataLog
        from events.store import EventStore

        return PersonalDataLog(EventStore.over(self.client(), self.tables()), self.revealer_factory()())

    def revealer_factory(self) -> Any:
        """How a command (or a rebuild's worker process) builds its ``Revealer``: over the keys
        table, with the local stand-in for KMS (its key in --state-dir) or KMS itself."""
        from processors.adapters.subject_keys import RevealerFactory

        local = self.connection().endpoint_url is not None
        return RevealerFactory(self.client_factory(), self.tables()["keys"], self.kms_stand_in() if local else None)

    def kms_stand_in(self) -> Path:
        """The local stand-in for KMS's key: in --state-dir, beside the stacks run from there (a
        demo's run directory is temporary; the key, like an account's KMS key, stays)."""
        from processors.adapters.subject_keys import KMS_STAND_IN

        return self.state_dir.resolve() / KMS_STAND_IN

    def local_endpoint(self) -> str:
        """The local stack's engine, which commands that run the stack's own code need."""
        endpoint = self.connection().endpoint_url
        if endpoint is None:
            raise DynafoldError("no local stack: start one with `dynafold up` (or give --endpoint-url)")
        return endpoint

    def local_stack(self, **options: Any) -> Any:
        """The local stack's wiring over this context's engine, tables and state."""
        from processors.local.stack import LocalStack

        connection = self.connection()
        return LocalStack(self.local_endpoint(), self.view_tables(), self.run_dir, access_key=connection.access_key,
                          region=connection.region, log_files=self.state_dir / "logs",
                          kms_stand_in=self.kms_stand_in(), **options)

    def root(self) -> Any:
        """The composition root over this context's engine and tables, as the local stack wires it:
        the CLI answers through the same services the HTTP routes and the console use. With no local
        engine (nothing given, none in the environment, no local stack running from --state-dir) it
        is the AWS root of the stack the table prefix names, with the adapters a deployed function gets."""
        if self.connection().endpoint_url is None:
            return self.aws_root()
        return self.local_stack().root

    def aws_root(self) -> Any:
        """The composition root of the deployed stack whose tables carry this context's prefix
        (``--table-prefix <stack>-``), built as Lambda builds it, with the caller's AWS credentials."""
        from processors.operations.template import function_log_groups
        from processors.wiring.aws import aws_root

        stack = self.table_prefix.removesuffix("-")  # the template names every table "${AWS::StackName}-<name>"
        return aws_root(self.aws_environment(), log_groups=lambda: function_log_groups(stack))

    def aws_environment(self) -> dict[str, str]:
        """A deployed function's environment for the stack ``--table-prefix`` names (``dynafold-prod-``:
        stack ``dynafold-prod``, tables ``dynafold-prod-<table>``, its view-versions parameter), under
        what the shell sets (``VIEW_VERSIONS_PARAMETER``, ``DYNAFOLD_REBUILD_STATE_MACHINE``,
        ``STREAM_FAILURE_QUEUE_URL``, ``POWERTOOLS_METRICS_NAMESPACE``: the stack's outputs)."""

        from processors.local.tables import local_tables

        stack = self.table_prefix.rstrip("-")
        derived = {**local_tables(self.table_prefix, versions={}).to_env(),
                   "VIEW_VERSIONS_PARAMETER": f"/{stack}/view-versions", "DYNAFOLD_STACK_NAME": stack}
        return {**derived, **os.environ}


Handler = Callable[[Context, argparse.Namespace], int]


class AddCommand(Protocol):
    """Adds one subcommand (with the common options) that runs ``handler``; ``parent`` defaults to
    the top level; ``aliases`` are other names for it."""

    def __call__(self, name: str, handler: Handler, help_text: str, parent: Any = ...,
                 aliases: Sequence[str] = ...) -> argparse.ArgumentParser: ...


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", default=argparse.SUPPRESS,
                        help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL / AWS)")
    parser.add_argument("--table-prefix", default=argparse.SUPPRESS, help="table name prefix (default dynafold-)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="one JSON document on stdout for scripts (logs and notes go to stderr)")
    parser.add_argument("--state-dir", default=argparse.SUPPRESS, metavar="DIR",
                        help="the local stack's state: its engine and credentials while `dynafold up` runs, "
                             "views.json, rebuild progress, logs, outbox, secrets (default .dynafold)")


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A view's parser as an argparse type: its InvalidQuery becomes argparse's one-line usage error."""
    @functools.wraps(parse)
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except InvalidQuery as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def existing_stream(events: list[Any], stream: str) -> list[Any]:
    """A stream asked for by name: its events, or NotFound when it has none (a stream that was
    never written is not an empty success)."""
    if not events:
        raise NotFound(f"stream {stream!r} (it has no events)")
    return events


# Argument types the commands share (the rebuild's --segments, the audit's times).
positive_int = argument_type(_unit.positive_int)
moment = argument_type(_unit.moment)
