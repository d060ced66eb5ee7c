"""Prove a rebuilt view equal to the live one: a hash per row, the differing keys listed. Pure.

What is compared is what the view means, row by row: every attribute, including the owning
stream and, on single-row views and head rows, the version applied. One thing is left out on
purpose: the ``stream_version`` of a non-head row of a multi-row view records the batch that last
rewrote that row, which depends on how Lambda happened to batch the stream, not on the history
(the head row carries the stream's version). Rows whose TTL has passed are left out too: DynamoDB
deletes them in the background, on each table at its own pace.

While traffic continues, the live side and the rebuilt side are each at some version of every
stream. Rows are therefore compared stream by stream, and only at a common version: a stream
whose sides stand at different versions is *unsettled* (the shell catches the rebuilt side up to
the live version, or waits a bounded time for the live projector), never a difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from events.envelope import canonical_json
from events.sharding import bare_value
from projections.view import HEAD_SORT_KEY, ROW_KEYS_ATTR, STREAM_ATTR, VERSION_ATTR, Row

RowKey = tuple[str, ...]
MISSING, EXTRA, DIFFERENT = "missing from rebuilt", "only in rebuilt", "different"


@dataclass(frozen=True, slots=True)
class TableRule:
    """How to read one table's rows: its key attributes and its TTL attribute (if any)."""

    key_attr: str
    sort_attr: str | None = None
    ttl_attr: str | None = None
    category: str = ""  # the owning view's stream category: owns rows that carry no stream (extras)
    # Write-sharded index attributes ("PENDING#3"): compared by their bare value, so a live row a
    # deployed table got before the key was sharded ("PENDING") equals its rebuilt copy.
    sharded: tuple[str, ...] = ()

    def owner(self, row: Row) -> str:
        """The stream that owns a row: its stamp, or for insert-only extras ``<category>:<key>``."""
        stream = row.get(STREAM_ATTR)
        return str(stream) if stream is not None else f"{self.category}:{row[self.key_attr]}"

    def key(self, row: Row) -> RowKey:
        if self.sort_attr is None:
            return (str(row[self.key_attr]),)
        return (str(row[self.key_attr]), str(row[self.sort_attr]))

    def compared(self, row: Row) -> Row:
        if self.sharded:
            row = {name: bare_value(value) if name in self.sharded and isinstance(value, str) else value
                   for name, value in row.items()}
        if self.sort_attr is None:
            return row
        if row.get(self.sort_attr) != HEAD_SORT_KEY:
            return {name: value for name, value in row.items() if name != VERSION_ATTR}
        # A head's list of its rows is derived from the rows, which are compared themselves; a head
        # written before heads listed their rows has none, and is no different for that.
        return {name: value for name, value in row.items() if name != ROW_KEYS_ATTR}

    def expired(self, row: Row, now_epoch: int) -> bool:
        value = row.get(self.ttl_attr) if self.ttl_attr else None
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value < now_epoch


@dataclass(frozen=True, slots=True)
class RowDigest:
    hash: str
    version: int | None  # the row's stream_version stamp, to tell "behind" from "wrong"
    stream: str = ""  # the owning stream


def row_hash(row: Row) -> str:
    return hashlib.sha256(canonical_json(row).encode("utf-8")).hexdigest()


def digest_rows(rows: Iterable[Row], rule: TableRule, now_epoch: int) -> dict[RowKey, RowDigest]:
    digests = {}
    for row in rows:
        if rule.expired(row, now_epoch):
            continue
        version = row.get(VERSION_ATTR)
        digests[rule.key(row)] = RowDigest(row_hash(rule.compared(row)), None if version is None else int(version),
                                           rule.owner(row))
    return digests


@dataclass(frozen=True, slots=True)
class Difference:
    family: str
    key: RowKey
    kind: str
    live_version: int | None = None
    rebuilt_version: int | None = None

    @property
    def versions_differ(self) -> bool:
        """Both rows carry a version and they disagree: one side has applied more of the stream."""
        return (self.live_version is not None and self.rebuilt_version is not None
                and self.live_version != self.rebuilt_version)

    def __str__(self) -> str:
        where = f"{self.family} {'/'.join(self.key)}: {self.kind}"
        if self.versions_differ:
            where += f" (live at v{self.live_version}, rebuilt at v{self.rebuilt_version})"
        return where


@dataclass
class Comparison:
    rows: dict[str, int] = field(default_factory=dict)  # family -> rows compared (live side)
    differences: list[Difference] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def in_flight(self) -> list[Difference]:
        """Differences that may just be one side behind the other (worth another catch-up)."""
        return [d for d in self.differences if d.versions_differ or d.kind in (MISSING, EXTRA)]


def compare_family(family: str, live: Mapping[RowKey, RowDigest], rebuilt: Mapping[RowKey, RowDigest],
                   into: Comparison) -> Comparison:
    into.rows[family] = len(live)
    for key in sorted(live.keys() | rebuilt.keys()):
        before, after = live.get(key), rebuilt.get(key)
        if before is not None and after is not None and before.hash == after.hash:
            continue
        kind = MISSING if after is None else EXTRA if before is None else DIFFERENT
        into.differences.append(Difference(family, key, kind, None if before is None else before.version,
                                                None if after is None else after.version))
    return into


FamilyDigests = Mapping[str, Mapping[RowKey, RowDigest]]  # family -> key -> digest


def stream_versions(digests: FamilyDigests) -> dict[str, int]:
    """Each stream's version on one side: the highest stamp among its rows (its head or single row)."""
    versions: dict[str, int] = {}
    for rows in digests.values():
        for digest in rows.values():
            versions[digest.stream] = max(versions.get(digest.stream, 0), digest.version or 0)
    return versions


def only_streams(digests: FamilyDigests, streams: set[str]) -> dict[str, dict[RowKey, RowDigest]]:
    return {family: {k: d for k, d in rows.items() if d.stream in streams} for family, rows in digests.items()}


def unsettled_streams(live: FamilyDigests, rebuilt: FamilyDigests) -> dict[str, tuple[int, int]]:
    """stream -> (live version, rebuilt version) of every stream whose sides stand at different versions."""
    live_at, rebuilt_at = stream_versions(live), stream_versions(rebuilt)
    return {stream: (live_at.get(stream, 0), rebuilt_at.get(stream, 0))
            for stream in sorted(live_at.keys() | rebuilt_at.keys())
            if live_at.get(stream, 0) != rebuilt_at.get(stream, 0)}


def compare_settled(live: FamilyDigests, rebuilt: FamilyDigests, unsettled: set[str], into: Comparison) -> Comparison:
    """Compare the rows of every stream not in ``unsettled`` (its sides at one version): a row
    differs only there. ``into.rows`` counts the live rows compared, per family."""
    for family in live.keys() | rebuilt.keys():
        mine_live = {k: d for k, d in live.get(family, {}).items() if d.stream not in unsettled}
        mine_rebuilt = {k: d for k, d in rebuilt.get(family, {}).items() if d.stream not in unsettled}
        counted = into.rows.get(family, 0)
        compare_family(family, mine_live, mine_rebuilt, into)
        into.rows[family] += counted
    return into


# ---------------------------------------------------------------------------- by scan segment
# A segment of a view table holds whole partitions, so the comparison of one segment sees each
# stream's rows in that table whole, on each side it reads (services.rebuild_compare).

def behind_streams(streams: Iterable[str], live_at: Mapping[str, int],
            rebuilt_at: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """stream -> (rebuilt version, live version) where the live side has applied more."""
    return {s: (rebuilt_at.get(s, 0), live_at[s]) for s in streams if live_at.get(s, 0) > rebuilt_at.get(s, 0)}


Sides = tuple[dict[RowKey, RowDigest] | None, dict[RowKey, RowDigest] | None]  # (live, rebuilt); None: unseen


def whole_version(rows: Mapping[RowKey, RowDigest], rule: TableRule) -> int | None:
    """The version a stream's rows in its view's own table stand at: the single row's stamp, or the
    head row's when no other row carries a newer one (a newer one: read while the stream moved)."""
    if rule.sort_attr is None:
        return next(iter(rows.values())).version if len(rows) == 1 else None
    head = next((digest for key, digest in rows.items() if key[1] == HEAD_SORT_KEY), None)
    if head is None or head.version is None:
        return None
    return head.version if all((d.version or 0) <= head.version for d in rows.values()) else None


def by_stream(digests: Mapping[RowKey, RowDigest]) -> dict[str, dict[RowKey, RowDigest]]:
    streams: dict[str, dict[RowKey, RowDigest]] = {}
    for key, digest in digests.items():
        streams.setdefault(digest.stream, {})[key] = digest
    return streams


def same_rows(live: Mapping[RowKey, RowDigest], rebuilt: Mapping[RowKey, RowDigest]) -> bool:
    """The same keys with the same hashes (a hash covers what the comparison compares, see
    ``TableRule.compared``: the version of a head or single row, not a non-head row's batch stamp)."""
    return live.keys() == rebuilt.keys() and all(rebuilt[key].hash == digest.hash for key, digest in live.items())


def owned_rows(digests: FamilyDigests, suspects: Mapping[str, set[str]], streams: set[str]) -> FamilyDigests:
    """Per family, the rows of ``streams`` that this comparison owns there."""
    return {family: {k: d for k, d in rows.items() if d.stream in streams and d.stream in suspects.get(family, ())}
            for family, rows in digests.items()}
