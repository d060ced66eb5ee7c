"""What an exported log proves about itself, checked offline from its lines' chain links. Pure.

Every exported line carries its hash and its predecessor's (``events.cloudevent``). From the
file alone this proves:
- every line's content is what was hashed when it was appended: its hash recomputes from the
  line and its ``prevhash`` (an edited line is *altered*);
- every link between lines of a stream that follow each other (versions v and v+1): the later
  line's ``prevhash`` is the earlier one's hash (a line removed, swapped or forged and re-hashed
  in the middle breaks a link), and a stream's version 1 starts from the genesis hash.
A line missing between two others, or a stream starting after version 1, leaves a link the file
cannot check (a *gap*): an unfiltered export has none, one taken with --from/--to/--type has them.

What the file cannot prove alone: that nothing was cut from the *end* of a stream (what is left
is an intact, shorter chain), that no whole stream was left out, and that no chain was recomputed
from its altered event to its end (the hash is unkeyed). Those need a head stated apart from the
file: the *heads digest* `audit export` prints (a hash over every stream's last version and hash),
kept where the file's holder cannot change it, and compared with the file's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from events.chain import BrokenLink
from events.cloudevent import ExportedEvent
from events.envelope import GENESIS_HASH


@dataclass(frozen=True, slots=True)
class ExportProblem:
    """A link of the chain the file contradicts or cannot check, and the line it was found on."""

    line: int
    link: BrokenLink

    def __str__(self) -> str:
        return f"line {self.line}: {self.link}"

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "stream": self.link.stream, "version": self.link.version,
                "problem": self.link.problem}


@dataclass(frozen=True)
class ExportReport:
    events: int
    heads: dict[str, tuple[int, str]]  # stream -> (last version in the file, its hash)
    broken: list[ExportProblem] = field(default_factory=list)  # contradicted: altered or relinked
    gaps: list[ExportProblem] = field(default_factory=list)  # links the file cannot check

    @property
    def streams(self) -> int:
        return len(self.heads)

    @property
    def heads_digest(self) -> str:
        return heads_digest(self.heads)


def heads_digest(heads: dict[str, tuple[int, str]]) -> str:
    """One hash over every stream's last (version, hash): it changes when a stream's tail is cut,
    a stream is left out or added, or any chain is recomputed."""
    text = "\n".join(f"{stream} {version} {digest}" for stream, (version, digest) in sorted(heads.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_export(lines: Iterable[tuple[int, ExportedEvent]]) -> ExportReport:
    """Check every line's hash and every link between consecutive versions of a stream; ``lines``
    are (line number, event) in any order."""
    by_stream: dict[str, list[tuple[int, ExportedEvent]]] = {}
    count = 0
    for number, event in lines:
        by_stream.setdefault(event.stream, []).append((number, event))
        count += 1
    broken: list[ExportProblem] = []
    gaps: list[ExportProblem] = []
    heads: dict[str, tuple[int, str]] = {}
    for stream, entries in sorted(by_stream.items()):
        previous: tuple[int, ExportedEvent] | None = None
        for number, event in sorted(entries, key=lambda entry: (entry[1].version, entry[0])):
            problem = _link_problem(previous, event)
            if problem is not None:
                kind, text = problem
                found = ExportProblem(number, BrokenLink(stream, event.version, text))
                (gaps if kind == "gap" else broken).append(found)
            previous = (number, event)
        last = previous[1] if previous else None
        if last is not None:
            heads[stream] = (last.version, last.hash or "")
    return ExportReport(count, heads, broken, gaps)


def _link_problem(previous: tuple[int, ExportedEvent] | None, event: ExportedEvent) -> tuple[str, str] | None:
    """("broken" | "gap", why) for one line after the previous line of its stream, or None."""
    if event.hash is None or event.prev_hash is None:
        return "broken", "the line carries no hash/prevhash (exported before exports carried the chain): unverifiable"
    if event.recomputed_hash() != event.hash:
        return "broken", "content does not match its hash (altered)"
    if previous is None:
        if event.version == 1:
            return None if event.prev_hash == GENESIS_HASH else ("broken", "version 1 does not start from the "
                                                                           "genesis hash")
        return "gap", f"the stream starts at version {event.version}: its earlier links are not in the file"
    number, before = previous
    if event.version == before.version:
        return "broken", f"version {event.version} appears twice (also line {number})"
    if event.version > before.version + 1:
        missing = (f"version {before.version + 1}" if event.version == before.version + 2
                   else f"versions {before.version + 1}-{event.version - 1}")
        return "gap", f"{missing} not in the file (after line {number})"
    if event.prev_hash != before.hash:
        return "broken", f"prevhash does not match the hash of version {before.version} (line {number})"
    return None
