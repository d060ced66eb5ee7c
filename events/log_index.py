"""Audit reads over the event table's indexes: events of a type in a time range, events of one
request, one event by its id.

The indexes (``by-type-time``, ``by-correlation``, ``by-id`` in template.yaml) project keys only,
so a page of index entries is followed by one BatchGetItem for the full items. Never a table scan.
Pages continue from an opaque token, so a caller can stop and come back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from events.errors import DynafoldError
from events.items import Item

BY_TYPE_TIME, BY_CORRELATION, BY_ID = "by-type-time", "by-correlation", "by-id"
_BATCH_GET_LIMIT = 100


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

    def by_type(self, event_type: str, start: str, end: str, *, limit: int = 100,
                token: str | None = None, newest_first: bool = False) -> Page:
        """Events of one stored type with ``start <= time <= end`` (stored time strings), oldest first."""
        return self._page(BY_TYPE_TIME, "type", event_type, (start, end), limit, token, newest_first)

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

    def _page(self, index: str, attr: str, value: str, times: tuple[str, str] | None, limit: int,
              token: str | None, newest_first: bool = False) -> Page:
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
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(token)
        page = self._client.query(**kwargs)
        keys = [{"stream": k["stream"], "version": k["version"]} for k in page["Items"]]
        last = page.get("LastEvaluatedKey")
        return Page(self.get_items(keys), encode_token(last) if last else None)

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
