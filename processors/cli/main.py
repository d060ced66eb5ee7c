"""The `dynafold` command line: assembles the command modules' subcommands and runs one.

Exit 0 on success, 1 on failure, 2 on bad input (one line saying what), 3 on a conflict (a version
conflict, or a rebuild of the same view already running), 4 when what was asked for does not exist
(the HTTP API's 404), 130 when interrupted (Ctrl-C: one line saying where; the same command resumes).
Stdout carries the answer alone (one JSON document with --json); logs and notes go to stderr.
Each command group lives in its own module with a ``register`` function; they share
``processors.cli.context`` and never import this module.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from events.errors import DynafoldError, NotFound, VersionConflict
from processors.cli import (
    alerts,
    audit,
    cost,
    deliveries,
    explain,
    function_logs,
    local,
    log,
    query,
    rebuild,
    shopify,
    status,
    targets,
)
from processors.cli.context import (
    DEFAULT_STATE_DIR,
    EXIT_BAD_INPUT,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    Context,
    Handler,
    Interrupted,
    Parser,
    common_options,
)
from processors.local.engine import EngineUnavailable
from processors.local.stack_record import StackRunning
from processors.operations.rebuild_lock import RebuildBusy

# In the order `dynafold --help` lists them.
COMMAND_MODULES = (local, log, function_logs, status, query, explain, deliveries, alerts, targets, shopify, rebuild,
                   audit, cost)


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common_options(common)
    parser = Parser(prog="dynafold", description="Event-sourced stream processor on DynamoDB Streams.",
                    parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, handler: Handler, help_text: str, parent: Any = sub,
                aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text, parents=[common], aliases=list(aliases))
        p.set_defaults(handler=handler)
        return p

    for module in COMMAND_MODULES:
        module.register(sub, command, common)
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
        state_dir=Path(getattr(args, "state_dir", None) or DEFAULT_STATE_DIR),
        state_dir_given=getattr(args, "state_dir", None) is not None,
    )
    try:
        with _logs_on_stderr():
            return args.handler(ctx, args)
    except Interrupted as error:  # Ctrl-C in a command that resumes: where it stopped
        print(f"{_fresh_line()}dynafold: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"{_fresh_line()}dynafold: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (VersionConflict, RebuildBusy) as error:
        print(f"dynafold: {error}", file=sys.stderr)
        return EXIT_CONFLICT
    except NotFound as error:
        print(f"dynafold: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (EngineUnavailable, StackRunning) as error:
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


@contextlib.contextmanager
def _logs_on_stderr() -> Iterator[None]:
    """The functions' loggers write to stderr while a command runs (stdout is its answer)."""
    from processors.telemetry.logs import LOG_OUTPUT

    previous, LOG_OUTPUT.target = LOG_OUTPUT.target, sys.stderr
    try:
        yield
    finally:
        LOG_OUTPUT.target = previous


def _fresh_line() -> str:
    """A progress bar may have left the terminal's cursor mid-line."""
    return "\n" if sys.stderr.isatty() else ""


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
