"""Hash-chain verification of one stream's stored items. Pure.

A chain alone proves every link, but not that the last links are still there: a log cut short
is an intact, shorter chain. So every append also records the stream's head (version and hash,
kept apart from the event table, see ``EventStore``), and verification checks the chain reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from events.envelope import GENESIS_HASH
from events.items import Item, recompute_hash


@dataclass(frozen=True, slots=True)
class BrokenLink:
    stream: str
    version: int
    problem: str

    def __str__(self) -> str:
        return f"{self.stream} v{self.version}: {self.problem}"


@dataclass(frozen=True, slots=True)
class RecordedHead:
    """The head an append recorded for its stream: the last version written and its hash."""

    version: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    stream: str
    events: int
    head_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_items(stream: str, items: Iterable[Item], head: RecordedHead | None = None) -> ChainReport:
    """Check versions run 1..n without gaps and every link hashes to the next, and (given the
    recorded ``head``) that the chain reaches it and passes through its hash; name the first break.

    A head older than the log is fine (it was read first, or events were written without one);
    a head beyond the log means events were removed from its end."""
    expected_version = 1
    prev_hash = GENESIS_HASH
    count = 0
    for item in items:
        version = int(item["version"]["N"])
        if version != expected_version:
            problem = (
                f"version {expected_version} is missing (next stored is {version})"
                if version > expected_version
                else f"version {version} out of order (expected {expected_version})"
            )
            return ChainReport(stream, count, prev_hash, BrokenLink(stream, expected_version, problem))
        if item["prev_hash"]["S"] != prev_hash:
            return ChainReport(
                stream, count, prev_hash,
                BrokenLink(stream, version, "prev_hash does not match the previous event's hash")
            )
        if recompute_hash(item) != item["hash"]["S"]:
            return ChainReport(
                stream, count, prev_hash, BrokenLink(stream, version, "content does not match its hash (altered)")
            )
        if head is not None and version == head.version and item["hash"]["S"] != head.hash:
            return ChainReport(
                stream, count, prev_hash,
                BrokenLink(stream, version, "hash differs from the head recorded when it was appended (replaced)"),
            )
        prev_hash = item["hash"]["S"]
        expected_version += 1
        count += 1
    if head is not None and head.version > count:
        return ChainReport(stream, count, prev_hash, BrokenLink(
            stream, count + 1,
            f"truncated: the log ends at version {count} but appends reached version {head.version}"))
    return ChainReport(stream, count, prev_hash, None)


def group_by_stream(items: Iterable[Item]) -> Iterator[tuple[str, list[Item]]]:
    """Consecutive items of one stream together (a scan yields each stream contiguously)."""
    stream: str | None = None
    group: list[Item] = []
    for item in items:
        current = item["stream"]["S"]
        if current != stream and group:
            yield stream, group  # type: ignore[misc]
            group = []
        stream = current
        group.append(item)
    if group:
        yield stream, group  # type: ignore[misc]


def verify_log(items: Iterable[Item], heads: Mapping[str, RecordedHead] | None = None) -> Iterator[ChainReport]:
    """A report per stream of a whole-log read (items of each stream contiguous, in version order),
    checked against the recorded ``heads``; a stream with a head and no events left is reported too."""
    heads = heads or {}
    seen: set[str] = set()
    for stream, group in group_by_stream(items):
        seen.add(stream)
        yield verify_items(stream, group, heads.get(stream))
    for stream in sorted(heads.keys() - seen):
        yield verify_items(stream, [], heads[stream])
