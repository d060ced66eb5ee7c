"""What every `dynafold` command shares: its context (endpoint, tables, output), exit codes, the
one-line parser and the argument types. Command modules import this, never `main`, so the
command line is assembled in one direction: main -> command modules -> context."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

from events.errors import DynafoldError
from processors.local.tables import local_tables
from projections import unit as _unit
from projections.unit import InvalidQuery

# 0 ok, 1 failed (or found broken), 2 bad input, 3 version conflict, 4 not found (the routes' 404),
# 130 interrupted (Ctrl-C: 128 + SIGINT, as a shell reports it).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
DEFAULT_STATE_DIR = Path(".dynafold")
DEFAULT_DATA_DIR = DEFAULT_STATE_DIR / "data"


class Parser(argparse.ArgumentParser):
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
        """The log's tables and the active view tables (see `dynafold rebuild --switch`)."""

        return local_tables(self.table_prefix)

    def store(self) -> Any:
        from events.store import EventStore

        return EventStore.over(self.client(), self.tables())

    def local_endpoint(self) -> str:
        """The local stack's engine, which commands that run the stack's own code need."""
        from processors.adapters.aws import resolve_endpoint

        endpoint = resolve_endpoint(self.endpoint_url)
        if endpoint is None:
            raise DynafoldError("give --endpoint-url (or AWS_ENDPOINT_URL_DYNAMODB): the local stack's engine, "
                                "as `dynafold up` prints it")
        return endpoint

    def root(self, state_dir: Path = DEFAULT_STATE_DIR) -> Any:
        """The composition root over this context's engine and tables, as the local stack wires it:
        the CLI answers through the same services the HTTP routes and the console use. With no
        local endpoint (nothing given, none in the environment) it is the AWS root of the stack the
        table prefix names, with the adapters a deployed function gets."""
        from processors.adapters.aws import resolve_endpoint

        if resolve_endpoint(self.endpoint_url) is None:
            return self.aws_root()
        from processors.local.stack import LocalStack

        return LocalStack(self.local_endpoint(), self.view_tables(), state_dir).root

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

        stack = self.table_prefix.rstrip("-")
        derived = {**local_tables(self.table_prefix, versions={}).to_env(),
                   "VIEW_VERSIONS_PARAMETER": f"/{stack}/view-versions", "DYNAFOLD_STACK_NAME": stack}
        return {**derived, **os.environ}


Handler = Callable[[Context, argparse.Namespace], int]


class AddCommand(Protocol):
    """Adds one subcommand (with the common options) that runs ``handler``; ``parent`` defaults to
    the top level."""

    def __call__(self, name: str, handler: Handler, help_text: str, parent: Any = ...) -> argparse.ArgumentParser: ...


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", default=argparse.SUPPRESS,
                        help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL / AWS)")
    parser.add_argument("--table-prefix", default=argparse.SUPPRESS, help="table name prefix (default dynafold-)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output for scripts")


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A view's parser as an argparse type: its InvalidQuery becomes argparse's one-line usage error."""
    @functools.wraps(parse)
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except InvalidQuery as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


# Argument types the commands share (the rebuild's --segments, the audit's times).
positive_int = argument_type(_unit.positive_int)
moment = argument_type(_unit.moment)
