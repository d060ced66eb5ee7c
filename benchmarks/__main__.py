"""`python -m benchmarks` (make bench): every benchmark against one DynamoDB Local run."""

from __future__ import annotations

import argparse

from benchmarks import append, projector
from benchmarks.common import engine


def main() -> None:
    parser = argparse.ArgumentParser(description="dynafold benchmarks (print ratios; never fail)")
    parser.add_argument("--endpoint-url")
    args = parser.parse_args()
    with engine(args.endpoint_url) as url:
        append.run(url)
        projector.run(url)


if __name__ == "__main__":
    main()
