"""The inventory's questions: the stock of one SKU, of every SKU (a page at a time), and a SKU's returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from projections.inventory.fold import RETURNS_TABLE, InventoryItem, InventoryReturn
from projections.unit import (
    Answer, Arg, Command, InvalidQuery, Reader, Route, Section, decode_token, encode_token, found, key_query,
    page_limit, positive_int, rows,
)
from projections.view import HEAD_SORT_KEY

FAMILY = "inventory"


class InventoryQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def item(self, sku: str) -> InventoryItem | None:
        row = self._reader.get(FAMILY, {"sku": sku})
        return None if row is None else InventoryItem.from_row(row)

    def one(self, sku: str) -> InventoryItem:
        """The SKU's row, asked for by name: NotFound (a 404, exit 4) when the view has none."""
        return found(self.item(sku), f"SKU {sku!r} (no stock recorded for it)")

    def page(self, limit: int = 100, start_token: str | None = None) -> tuple[list[InventoryItem], str | None]:
        """One page of all SKUs (a bounded Scan, in no particular order) and the token for the next.

        The token is None when there is nothing more.
        """
        if limit < 1:
            raise InvalidQuery(f"page limit must be >= 1, got {limit}")
        start: Mapping[str, Any] | None = decode_token(start_token) if start_token else None
        found: list[InventoryItem] = []
        while True:
            page, last = self._reader.scan(FAMILY, limit - len(found), start)
            found.extend(InventoryItem.from_row(row) for row in page)
            if last is None:
                return found, None
            if len(found) >= limit:
                return found, encode_token(last)
            start = last  # a short page (1 MB limit): keep filling this one

    def all(self, page_size: int = 100) -> Iterator[InventoryItem]:
        token: str | None = None
        while True:
            found, token = self.page(page_size, token)
            yield from found
            if token is None:
                return

    def returns_of(self, sku: str) -> list[InventoryReturn]:
        """The SKU's returns in time order."""
        return [InventoryReturn.from_row(row) for row in self._reader.query(RETURNS_TABLE, key_query("sku", sku))
                if row.get("returned_at") != HEAD_SORT_KEY]


# ----------------------------------------------------------------------------- how the shell asks

def _cells(row: InventoryItem) -> dict[str, Any]:
    broadcast = row.last_broadcast
    return {**row.to_dict(), "broadcast": None if broadcast is None else broadcast.count,
            "broadcast_at": None if broadcast is None else broadcast.time, "shopify": _shopify(row)}


def _shopify(row: InventoryItem) -> str | None:
    """Each Shopify item and what it shows (what it should show, when that differs)."""
    shown = [f"{item.inventory_item_id}={'-' if item.available is None else item.available}"
             + (f" (should {item.expected})" if item.expected is not None and item.expected != item.available else "")
             for item in row.shopify_items]
    return ", ".join(shown) or None


def _cmd_inventory(q: InventoryQueries, args: Mapping[str, Any], now: datetime) -> Answer:
    if args["sku"] is not None:
        return Answer(q.one(args["sku"]), single=True)
    items = sorted(q.all(args["page_size"]), key=lambda r: r.sku)
    return Answer(items)


def _cmd_returns(q: InventoryQueries, args: Mapping[str, Any], now: datetime) -> Answer:
    return Answer(q.returns_of(args["sku"]))


def _get_inventory(q: InventoryQueries, path: Mapping[str, str], params: Mapping[str, str], now: datetime) -> Any:
    """All SKUs a page at a time: ?limit=N&next=<token from the previous page>."""
    found, token = q.page(page_limit(params), params.get("next") or None)
    return {"items": rows(found), "next": token}


def _get_item(q: InventoryQueries, path: Mapping[str, str], params: Mapping[str, str], now: datetime) -> Any:
    return q.one(path["sku"]).to_dict()


def _get_returns(q: InventoryQueries, path: Mapping[str, str], params: Mapping[str, str], now: datetime) -> Any:
    return {"sku": path["sku"], "returns": rows(q.returns_of(path["sku"]))}


def _report_inventory(q: InventoryQueries) -> list[dict[str, Any]]:
    return [{**row.to_dict(), "broadcast": row.last_broadcast.count if row.last_broadcast else None}
            for row in sorted(q.all(), key=lambda row: row.sku)]


def _report_returns(q: InventoryQueries) -> list[dict[str, Any]]:
    return [ret.to_dict() for row in sorted(q.all(), key=lambda row: row.sku) for ret in q.returns_of(row.sku)]


_COLUMNS = ("sku", "physical", "buffer", "available", "uncounted", "shopify", "broadcast", "broadcast_at", "updated_at")
COMMANDS = (
    Command("inventory", "stock of one SKU, or of every SKU", _cmd_inventory, _COLUMNS, cells=_cells, args=(
        Arg(("sku",), {"nargs": "?", "default": None}),
        Arg(("--page-size",), {"type": positive_int, "default": 100, "help": "SKUs per scan page (default 100)"}),
    )),
    Command(RETURNS_TABLE, "a SKU's returns in time order", _cmd_returns,
            ("time", "quantity", "disposition", "restocked", "order_id", "event_id"), args=(Arg(("sku",)),),
            aliases=("returns",)),
)
ROUTES = (
    Route("/inventory", _get_inventory),
    Route("/inventory/{sku}", _get_item),
    Route("/inventory/{sku}/returns", _get_returns),
)
REPORT = (
    Section("inventory", "Inventory (seed 004)", ("sku", "physical", "buffer", "available", "broadcast", "updated_at"),
            _report_inventory),
    Section("returns", "Returns (seed 004)", ("sku", "time", "quantity", "disposition", "restocked", "order_id"),
            _report_returns),
)
