"""`python -m benchmarks` (make bench): every benchmark against one DynamoDB Local run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from benchmarks import append, projector, rebuild
from benchmarks.common import engine

# name -> run(endpoint_url, args); add a benchmark by adding a line here.
BENCHMARKS: dict[str, Callable[[str, argparse.Namespace], Any]] = {
    "append": lambda url, args: append.run(url),
    "projector": lambda url, args: projector.run(url),
    "rebuild": lambda url, args: rebuild.run(url, args.rebuild_events),
}


def main() -> None:
    parser = argparse.ArgumentParser(description="dynafold benchmarks (print ratios; never fail)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which to run ({', '.join(BENCHMARKS)}; default all)")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--rebuild-events", type=int, default=rebuild.EVENTS,
                        help=f"history size of the rebuild benchmark "
                             f"(default {rebuild.EVENTS:,}; e.g. 10000 to try quickly)")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (one of {', '.join(BENCHMARKS)})")
    with engine(args.endpoint_url) as url:
        for name in args.names or BENCHMARKS:
            BENCHMARKS[name](url, args)


if __name__ == "__main__":
    main()
