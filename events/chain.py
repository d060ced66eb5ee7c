"""Hash-chain verification of one stream's stored items. Pure.

A chain alone proves every link, but not that the last links are still there: a log cut short
is an intact, shorter chain. So verification also checks the chain against *witnesses*: records
kept apart from the event table, written after the fact and off the append path, that a stream
reached a version (and, where they know it, with which hash). They are the sealed checkpoints
the projector writes from the table's change stream (``events.checkpoints``), the heads earlier
releases recorded with every append, and the versions the view rows record as applied. Why that
is enough to catch a truncated tail is argued in ``events.checkpoints``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
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
class Witness:
    """A record, kept apart from the event table, that a stream reached ``version`` (with ``hash``,
    when the witness knows it). ``source`` names it in a report ("sealed checkpoint", ...)."""

    version: int
    hash: str | None
    source: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    stream: str
    events: int
    head_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_items(stream: str, items: Iterable[Item], witnesses: Iterable[Witness] = ()) -> ChainReport:
    """Check versions run 1..n without gaps and every link hashes to the next, and that the chain
    reaches every witness and passes through its hash; name the first break.

    A witness older than the log is fine (the stream moved on since); a witness beyond the log
    means events were removed from its end; a witness's hash that differs from the stored event's
    means the event at that version was replaced."""
    known = [w for w in witnesses if w.version > 0]
    hashes: dict[int, list[Witness]] = {}
    for witness in known:
        if witness.hash is not None:
            hashes.setdefault(witness.version, []).append(witness)
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
        for witness in hashes.get(version, ()):
            if item["hash"]["S"] != witness.hash:
                return ChainReport(stream, count, prev_hash, BrokenLink(
                    stream, version, f"hash differs from the one the {witness.source} recorded (replaced)"))
        prev_hash = item["hash"]["S"]
        expected_version += 1
        count += 1
    furthest = max(known, key=lambda w: w.version, default=None)
    if furthest is not None and furthest.version > count:
        return ChainReport(stream, count, prev_hash, BrokenLink(
            stream, count + 1,
            f"truncated: the log ends at version {count} but the {furthest.source} recorded version "
            f"{furthest.version}"))
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


def verify_log(items: Iterable[Item],
               witnesses: Mapping[str, Sequence[Witness]] | None = None) -> Iterator[ChainReport]:
    """A report per stream of a whole-log read (items of each stream contiguous, in version order),
    checked against its ``witnesses``; a stream with witnesses and no events left is reported too."""
    witnesses = witnesses or {}
    seen: set[str] = set()
    for stream, group in group_by_stream(items):
        seen.add(stream)
        yield verify_items(stream, group, witnesses.get(stream, ()))
    for stream in sorted(witnesses.keys() - seen):
        yield verify_items(stream, [], witnesses[stream])


def merge_witnesses(*sources: Mapping[str, Sequence[Witness]]) -> dict[str, list[Witness]]:
    """Every source's witnesses of each stream, together."""
    merged: dict[str, list[Witness]] = {}
    for source in sources:
        for stream, found in source.items():
            merged.setdefault(stream, []).extend(found)
    return merged
