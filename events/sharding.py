"""Sharded index keys and the fan-out that reads them back in one order. Pure.

A DynamoDB partition takes at most 1,000 write units a second, and a GSI whose partition key has
few values (a stream category: "sku", "order", ...) puts every write of that value on one
partition; when the index cannot keep up, writes to the *table* are throttled. So such a key is
written as ``<value>#<bucket>`` with the bucket drawn from a stable hash of the item (``shard``),
which spreads one value over ``buckets`` partitions, and a read queries every bucket and merges
the answers (``merge_page``): newest first, one page at a time, with a token that remembers where
each bucket stands.

    key = shard("sku", "sku:PROD-1", 16)            # "sku#07"
    page = merge_page(fetch, shards("sku", 16), 50, token, order=lambda row: row["time"],
                      position=lambda row: {...})   # the ExclusiveStartKey after ``row``

``fetch(shard_key, start_key, limit)`` is the caller's query (descending on its sort key); this
module only decides what to ask and what to show, so any index can use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from events.errors import DynafoldError

T = TypeVar("T")
Key = dict[str, Any]  # a DynamoDB key in attribute-value form: {"name": {"S": "..."}}
Fetch = Callable[[str, Key | None, int], tuple[list[T], Key | None]]  # (items, LastEvaluatedKey)
_DONE = "done"
_MAX_KEY_ATTRIBUTES = 4  # table key (1-2) + index key (1-2)


class InvalidShardToken(DynafoldError, ValueError):
    """A continuation token that this fan-out did not write (forged, damaged or for other buckets)."""


def bucket(member: str, buckets: int) -> int:
    """The bucket of ``member``: stable across processes and releases (not Python's salted hash)."""
    digest = hashlib.sha256(member.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % buckets


def shard(value: str, member: str, buckets: int) -> str:
    """``value`` written for ``member``: ``<value>#<bucket>``, two digits (at most 100 buckets)."""
    if not 1 <= buckets <= 100:
        raise ValueError(f"buckets must be 1-100, not {buckets}")
    return f"{value}#{bucket(member, buckets):02d}"


def shards(value: str, buckets: int) -> list[str]:
    """Every key ``value`` is written under: what a read fans out over."""
    return [f"{value}#{n:02d}" for n in range(buckets)]


@dataclass(frozen=True)
class MergedPage(Generic[T]):
    items: list[T]
    next_token: str | None  # None: every bucket is exhausted


def merge_page(fetch: Fetch[T], keys: Sequence[str], limit: int, token: str | None, *,
               order: Callable[[T], Any], position: Callable[[T], Key],
               run: Callable[[Callable[[str], tuple[list[T], Key | None]], Iterable[str]],
                             Iterable[tuple[list[T], Key | None]]] = map) -> MergedPage[T]:
    """The next ``limit`` items over every bucket, greatest ``order`` first.

    Each unfinished bucket is asked for up to ``limit`` items after its cursor; the candidates are
    merged and the first ``limit`` shown. A bucket's cursor moves only past the items shown (which
    are a prefix of what it returned, since each bucket answers in descending order), so what was
    fetched and not shown is fetched again for the next page: nothing is skipped or shown twice in
    an index that does not change meanwhile. ``run`` is how the buckets are asked (``map``, or an
    executor's map to ask them at once).
    """
    cursors = _decode(token, keys)
    pending = [key for key in keys if cursors[key] != _DONE]

    def ask(key: str) -> tuple[list[T], Key | None]:
        start = cursors[key]
        return fetch(key, start if isinstance(start, dict) else None, limit)

    answers = dict(zip(pending, run(ask, pending), strict=True))
    candidates = [(order(item), n, key, item) for key, (items, _) in answers.items() for n, item in enumerate(items)]
    candidates.sort(key=lambda c: (c[0], -c[1]), reverse=True)  # ties: keep each bucket's own order
    shown = candidates[:limit]
    taken: dict[str, int] = {}
    for _, n, key, _item in shown:
        taken[key] = max(taken.get(key, -1), n)
    for key, (items, last) in answers.items():
        used = taken.get(key, -1) + 1
        if used == len(items) and last is None:
            cursors[key] = _DONE  # this bucket has nothing left
        elif used:
            cursors[key] = position(items[used - 1])
    finished = all(value == _DONE for value in cursors.values())
    return MergedPage([item for *_, item in shown], None if finished else _encode(cursors, keys))


def _encode(cursors: Mapping[str, Key | str | None], keys: Sequence[str]) -> str:
    text = json.dumps([cursors[key] for key in keys], sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def _decode(token: str | None, keys: Sequence[str]) -> dict[str, Key | str | None]:
    if not token:
        return dict.fromkeys(keys)
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        values = None
    if not isinstance(values, list) or len(values) != len(keys) or not all(map(_valid_cursor, values)):
        raise InvalidShardToken(f"invalid continuation token {token[:80]!r}")
    return dict(zip(keys, values, strict=True))


def _valid_cursor(value: Any) -> bool:
    if value is None or value == _DONE:
        return True
    return (isinstance(value, dict) and 0 < len(value) <= _MAX_KEY_ATTRIBUTES
            and all(isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("S", "N")
                    and isinstance(next(iter(v.values())), str) and len(next(iter(v.values()))) <= 2048
                    for v in value.values()))
