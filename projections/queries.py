"""The views' questions over DynamoDB: the one ``Reader`` of the view tables (a DynamoDB module).

Every question is a view's own (``projections/<view>/queries.py``): answered by a key lookup or a
Query on the table or one of its GSIs, paginated with ``LastEvaluatedKey``; the only Scan is "all
SKUs", one bounded page at a time with a continuation token. Head rows of multi-row views (sort
key ``"#"``) are never returned.

    q = ViewQueries(client, local_tables("dynafold-").views)
    q.pending_errors.detected_before("2024-05-01T12:00:00Z")
    q.alerts.find(unread=True, severity="critical")
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from projections.registry import UNITS
from projections.unit import InvalidQuery, Reader, ViewUnit
from projections.view import Row
from projections.view_store import from_item


class DynamoReader:
    """``Reader`` over DynamoDB. ``views`` maps table family to the physical table name
    (``Tables.views``; a ``Tables`` is accepted too), so a rebuilt version is read after a switch."""

    def __init__(self, client: Any, views: Mapping[str, str] | Any) -> None:
        self._client = client
        self._views: Mapping[str, str] = getattr(views, "views", views)

    def table(self, family: str) -> str:
        try:
            return self._views[family]
        except KeyError:
            raise InvalidQuery(f"no table configured for view {family!r}") from None

    def get(self, family: str, key: Mapping[str, str]) -> Row | None:
        item = self._client.get_item(TableName=self.table(family),
                                     Key={name: {"S": value} for name, value in key.items()}).get("Item")
        return None if item is None else from_item(item)

    def query(self, family: str, request: Mapping[str, Any]) -> Iterator[Row]:
        kwargs = {**request, "TableName": self.table(family)}
        while True:
            page = self._client.query(**kwargs)
            for item in page["Items"]:
                yield from_item(item)
            last = page.get("LastEvaluatedKey")
            if last is None:
                return
            kwargs["ExclusiveStartKey"] = last

    def scan(
        self, family: str, limit: int, start: Mapping[str, Any] | None
    ) -> tuple[list[Row], Mapping[str, Any] | None]:
        kwargs: dict[str, Any] = {"TableName": self.table(family), "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self._client.scan(**kwargs)
        return [from_item(item) for item in page["Items"]], page.get("LastEvaluatedKey")


class ViewQueries:
    """Every view's questions over DynamoDB, by the view's name as an attribute (``q.inventory``,
    ``q.pending_errors``, ``q.delivery_status``, ``q.alerts``) or by its unit (``q.of(unit)``)."""

    def __init__(self, client: Any, views: Mapping[str, str] | Any) -> None:
        self.reader: Reader = DynamoReader(client, views)
        self._by_attr = {unit.attr: unit for unit in UNITS}
        self._made: dict[str, Any] = {}

    def of(self, unit: ViewUnit) -> Any:
        if unit.name not in self._made:
            self._made[unit.name] = unit.queries(self.reader)
        return self._made[unit.name]

    def __getattr__(self, name: str) -> Any:
        unit = self.__dict__.get("_by_attr", {}).get(name)
        if unit is None:
            raise AttributeError(name)
        return self.of(unit)
