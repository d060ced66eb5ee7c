"""What every `dynafold` command shares: its context (endpoint, tables, output), exit codes, the
one-line parser and the argument types. Command modules import this, never `main`, so the
command line is assembled in one direction: main -> command modules -> context."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

from events.errors import DynafoldError
from processors.local.tables import local_tables
from projections import unit as _unit
from projections.unit import InvalidQuery

# 0 ok, 1 failed (or found broken), 2 bad input, 3 version conflict, 4 not found (the routes' 404).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
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
        the CLI answers through the same services the HTTP routes and the console use."""
        from processors.local.stack import LocalStack

        return LocalStack(self.local_endpoint(), self.view_tables(), state_dir).root


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
