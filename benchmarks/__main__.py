"""`python -m benchmarks` (make bench): every benchmark against one DynamoDB Local run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import append, cold_import, console, personal_data, projector, read, rebuild
from benchmarks.common import engine

# name -> run(endpoint_url, args); add a benchmark by adding a line here.
BENCHMARKS: dict[str, Callable[[str, argparse.Namespace], Any]] = {
    "append": lambda url, args: append.run(url),
    "read": lambda url, args: read.run(url),
    "projector": lambda url, args: projector.run(url),
    "rebuild": lambda url, args: rebuild.run(url, args.rebuild_events),
    "personal-data": lambda url, args: personal_data.run(url),
    "console": lambda url, args: console.run(url, args.console_events),
}
# name -> run(args): benchmarks that need no engine.
OFFLINE: dict[str, Callable[[argparse.Namespace], Any]] = {
    "cold-import": lambda args: cold_import.run(Path(args.build_dir)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description="dynafold benchmarks (print ratios; never fail)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which to run ({', '.join([*BENCHMARKS, *OFFLINE])}; default all)")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--rebuild-events", type=int, default=rebuild.EVENTS,
                        help=f"history size of the rebuild benchmark (default {rebuild.EVENTS:,}; "
                             "e.g. 10000 to try quickly)")
    parser.add_argument("--console-events", type=int, default=console.LARGE_LOG,
                        help=f"events in the console's Streams benchmark (default {console.LARGE_LOG:,})")
    parser.add_argument("--build-dir", default=str(cold_import.DEFAULT_BUILD),
                        help="the `sam build` output the cold-import benchmark zips (default .aws-sam/build)")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS and name not in OFFLINE]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (one of {', '.join([*BENCHMARKS, *OFFLINE])})")
    chosen = args.names or [*BENCHMARKS, *OFFLINE]
    if any(name in BENCHMARKS for name in chosen):
        with engine(args.endpoint_url) as url:
            for name in chosen:
                if name in BENCHMARKS:
                    BENCHMARKS[name](url, args)
    for name in chosen:
        if name in OFFLINE:
            OFFLINE[name](args)


if __name__ == "__main__":
    main()
