"""Audit reads over the event table's indexes: events of a type in a time range, events of one
request, one event by its id.

Every index (``by-type-shard-time``, ``by-correlation``, ``by-id``, and ``by-type-time`` where a
stack keeps it, in template.yaml) projects keys only, so a page of index entries is followed by one
BatchGetItem for the full items. Never a table scan. Pages continue from an opaque token, so a
caller can stop and come back.

A type is searched in every bucket of ``by-type-shard-time`` (events/items.py ``TYPE_INDEX``) and, on
a table that still has it, in the unsharded ``by-type-time``, the only index of the events appended
before the sharded one existed; an event found in both is returned once. The sources are merged in
time order a page at a time: an entry is returned only when no source still holding unread entries
could have an earlier one, and the token records where each source stands. ``by-correlation`` and
``by-id`` are not sharded: a request's correlation id and an event's id are written by a handful of
events each, never near one key value's write limit.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from events.errors import DynafoldError
from events.items import TYPE_INDEX, Item

BY_TYPE_TIME, BY_CORRELATION, BY_ID = "by-type-time", "by-correlation", "by-id"
_BATCH_GET_LIMIT = 100
_DONE = "done"  # a source's cursor once it has nothing left


class InvalidPageToken(DynafoldError):
    pass


@dataclass(frozen=True)
class Page:
    items: list[Item]  # full event items, in index (time) order
    next_token: str | None  # None: nothing more


def encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        raise InvalidPageToken(f"invalid page token {token!r}") from None
    if not isinstance(key, dict):
        raise InvalidPageToken(f"invalid page token {token!r}")
    return key


class EventIndex:
    def __init__(self, client: Any, events_table: str) -> None:
        self._client = client
        self.events_table = events_table
        self._index_names: set[str] | None = None

    def by_type(self, event_type: str, start: str, end: str, *, limit: int = 100,
                token: str | None = None, newest_first: bool = False) -> Page:
        """Events of one stored type with ``start <= time <= end`` (stored time strings), oldest first
        (or newest first: the console's lists)."""
        indexes = self._indexes()
        sources = [(TYPE_INDEX.index, TYPE_INDEX.attribute, value) for value in TYPE_INDEX.values(event_type)
                   if TYPE_INDEX.index in indexes]  # a table created before it has only by-type-time
        if BY_TYPE_TIME in indexes:
            sources.append((BY_TYPE_TIME, "type", event_type))
        if not sources:
            raise DynafoldError(f"{self.events_table} has no type index ({TYPE_INDEX.index} or {BY_TYPE_TIME})")
        state = _MergeState.decode(token, len(sources))
        pages: dict[int, list[dict[str, Any]]] = {}
        more: dict[int, dict[str, Any] | None] = {}
        for number, (index, attr, value) in enumerate(sources):
            cursor = state.cursors[number]
            if cursor == _DONE:
                continue
            page = self._client.query(**self._request(index, attr, value, (start, end), limit, cursor,
                                                      newest_first))
            pages[number], more[number] = page["Items"], page.get("LastEvaluatedKey")
        # Unread entries of a source with more pages are no earlier (newest first: no later) than its
        # last entry read (one that read nothing yet bounds nothing returned now: its cursor moves on).
        lasts = [pages[n][-1]["time"]["S"] if pages[n] else ("\uffff" if newest_first else "")
                 for n, last in more.items() if last]
        bound = (max if newest_first else min)(lasts, default=None)
        merged = heapq.merge(*([(entry["time"]["S"], n, entry) for entry in pages[n]] for n in sorted(pages)),
                             key=lambda triple: triple[0], reverse=newest_first)
        consumed = dict.fromkeys(pages, 0)
        keys: list[dict[str, Any]] = []
        for time, number, entry in merged:
            if len(keys) >= limit or (bound is not None and (time < bound if newest_first else time > bound)):
                break
            consumed[number] += 1
            if state.seen(time, entry):
                continue  # the same event from the other index (a table keeping by-type-time)
            keys.append({"stream": entry["stream"], "version": entry["version"]})
        for number, taken in consumed.items():
            if taken == len(pages[number]):
                state.cursors[number] = more[number] or _DONE
            elif taken:
                state.cursors[number] = _entry_key(pages[number][taken - 1])
        done = all(cursor == _DONE for cursor in state.cursors)
        return Page(self.get_items(keys), None if done else state.encode())

    def by_correlation(self, correlation_id: str, *, limit: int = 100, token: str | None = None,
                       newest_first: bool = False) -> Page:
        """Every event one request caused (its correlation id), across streams, oldest first."""
        return self._page(BY_CORRELATION, "correlation_id", correlation_id, None, limit, token, newest_first)

    def by_id(self, event_id: str) -> list[Item]:
        """The event with this id (ids are unique; an import that kept another log's ids could store
        one twice, in two streams: then both)."""
        return list(self.all_pages(lambda token: self._page(BY_ID, "id", event_id, None, 100, token)))

    def all_pages(self, fetch: Any) -> Iterator[Item]:
        """Follow the tokens: ``fetch(token) -> Page`` until the last page."""
        token = None
        while True:
            page = fetch(token)
            yield from page.items
            if page.next_token is None:
                return
            token = page.next_token

    def _indexes(self) -> set[str]:
        """The table's index names (read once: whether it keeps the unsharded by-type-time)."""
        if self._index_names is None:
            table = self._client.describe_table(TableName=self.events_table)["Table"]
            self._index_names = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
        return self._index_names

    def _page(self, index: str, attr: str, value: str, times: tuple[str, str] | None, limit: int,
              token: str | None, newest_first: bool = False) -> Page:
        page = self._client.query(**self._request(index, attr, value, times, limit,
                                                  decode_token(token) if token else None, newest_first))
        keys = [{"stream": k["stream"], "version": k["version"]} for k in page["Items"]]
        last = page.get("LastEvaluatedKey")
        return Page(self.get_items(keys), encode_token(last) if last else None)

    def _request(self, index: str, attr: str, value: str, times: tuple[str, str] | None, limit: int,
                 start_key: dict[str, Any] | None, newest_first: bool = False) -> dict[str, Any]:
        condition = "#k = :k"
        names = {"#k": attr}
        values: dict[str, Any] = {":k": {"S": value}}
        if times is not None:
            condition += " AND #t BETWEEN :from AND :to"
            names["#t"] = "time"
            values[":from"], values[":to"] = {"S": times[0]}, {"S": times[1]}
        kwargs: dict[str, Any] = {
            "TableName": self.events_table, "IndexName": index, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        return kwargs

    def get_items(self, keys: Sequence[dict[str, Any]]) -> list[Item]:
        """Full items for (stream, version) keys, in the order given (BatchGetItem, 100 at a time)."""
        found: dict[tuple[str, str], Item] = {}
        for first in range(0, len(keys), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {self.events_table: {"Keys": list(keys[first:first + _BATCH_GET_LIMIT]),
                                                          "ConsistentRead": True}}
            while request:
                page = self._client.batch_get_item(RequestItems=request)
                for item in page["Responses"].get(self.events_table, []):
                    found[(item["stream"]["S"], item["version"]["N"])] = item
                request = page.get("UnprocessedKeys") or {}
        # An index entry whose item is gone cannot happen in an append-only table; skip, never invent.
        return [found[k] for k in ((key["stream"]["S"], key["version"]["N"]) for key in keys) if k in found]


def _entry_key(entry: dict[str, Any]) -> dict[str, Any]:
    """An index entry's key, where the next query of its source starts after it (every attribute a
    KEYS_ONLY entry has: the index's keys and the table's)."""
    return dict(entry)


class _MergeState:
    """Where a merged search stands: each source's cursor (None: from its start, a key: after it,
    "done"), and the last time returned with the events returned at it (to return an event found in
    two indexes once, even across pages)."""

    def __init__(self, cursors: list[Any], time: str = "", at_time: list[list[str]] | None = None) -> None:
        self.cursors = cursors
        self.time = time
        self.at_time = {tuple(key) for key in at_time or []}

    @classmethod
    def decode(cls, token: str | None, sources: int) -> "_MergeState":
        if token is None:
            return cls([None] * sources)
        state = decode_token(token)
        cursors, time, at_time = state.get("cursors"), state.get("time"), state.get("at_time")
        if not (isinstance(cursors, list) and isinstance(time, str) and isinstance(at_time, list)
                and all(c is None or c == _DONE or isinstance(c, dict) for c in cursors)
                and all(isinstance(k, list) and len(k) == 2 and all(isinstance(p, str) for p in k)
                        for k in at_time)):
            raise InvalidPageToken(f"invalid page token {token!r}")
        if len(cursors) != sources:
            raise InvalidPageToken("the page token is for another set of the table's indexes; search again")
        return cls(cursors, time, at_time)

    def seen(self, time: str, entry: dict[str, Any]) -> bool:
        """Whether the event was already returned; if not, it is now."""
        key = (entry["stream"]["S"], entry["version"]["N"])
        if time != self.time:
            self.time, self.at_time = time, set()
        if key in self.at_time:
            return True
        self.at_time.add(key)
        return False

    def encode(self) -> str:
        return encode_token({"cursors": self.cursors, "time": self.time,
                             "at_time": sorted([list(key) for key in self.at_time])})
