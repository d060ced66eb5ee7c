"""The pending errors' questions: an order's errors, and the error monitor's "detected before T"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.errors import NotFound
from projections.pending_errors.fold import (
    INDEXED_NUMBER, ORDER_ROW, PENDING, PENDING_INDEX, PendingError, is_pending,
)
from projections.unit import (
    Answer, Arg, Command, InvalidQuery, Reader, Route, Section, key_query, parse_duration, rows, s, time_bound,
)

FAMILY = "pending-errors"


@dataclass(frozen=True)
class OrderErrors:
    """What the view holds for one order: its number, its pending errors, and the errors emailed
    and still reported (error hash -> when emailed). ``known`` is False when it holds nothing."""

    order_id: str
    order_number: str = ""
    first_validated: str = ""
    pending: tuple[PendingError, ...] = ()
    notified: Mapping[str, str] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return bool(self.first_validated or self.pending or self.notified)

    @property
    def label(self) -> str:
        return f"{self.order_number} ({self.order_id})" if self.order_number else self.order_id

    def summary(self) -> str:
        """One sentence for an order whose lookup found no pending error: it is not an unknown order."""
        if self.pending:
            return f"order {self.label}: {len(self.pending)} pending error(s)"
        if self.notified:
            return (f"order {self.label}: nothing pending; {len(self.notified)} error(s) emailed at "
                    f"{min(self.notified.values())} and still reported (see `dynafold explain order`)")
        return f"order {self.label}: nothing pending (validated clean, or its errors were fixed)"


class PendingErrorQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def order(self, order_id: str) -> OrderErrors:
        """Everything the view keeps of one order: one Query of its partition."""
        found = list(self._reader.query(FAMILY, key_query("order_id", order_id)))
        order = next((row for row in found if row.get("error_hash") == ORDER_ROW), {})
        pending = tuple(PendingError.from_row(row) for row in found if is_pending(row))
        notified = {str(row["error_hash"]): str(row["notified_at"]) for row in found if "notified_at" in row}
        number = order.get("order_number") or next((str(row["order_number"]) for row in found
                                                    if row.get("order_number")), "")
        return OrderErrors(order_id, number, str(order.get("first_validated") or ""), pending, notified)

    def by_order(self, order_id: str) -> list[PendingError]:
        """The order's pending errors, by error hash (never the order's head or order row, nor an error
        already notified and still reported: that row is not pending)."""
        return list(self.order(order_id).pending)

    def order_ids(self, order_number: str) -> list[str]:
        """The ids of the orders with this InFlow order number (the sparse by-order-number index)."""
        found = self._reader.query(FAMILY, key_query(INDEXED_NUMBER, order_number, index="by-order-number"))
        return sorted({str(row["order_id"]) for row in found})

    def find_order(self, ref: str) -> OrderErrors:
        """The order ``ref`` names: an order id, else an InFlow order number. NotFound when the view
        knows neither; InvalidQuery when the number names several orders."""
        if not ref.strip():
            raise InvalidQuery("give an order number (e.g. SO-000019) or an order id")
        by_id = self.order(ref)
        if by_id.known:
            return by_id
        ids = self.order_ids(ref)
        if len(ids) > 1:
            raise InvalidQuery(f"order number {ref!r} names {len(ids)} orders ({', '.join(ids)}): give the id")
        if not ids:
            raise NotFound(f"order {ref!r} (no order has this id or InFlow order number)")
        return self.order(ids[0])

    def detected_before(self, cutoff: str | datetime) -> list[PendingError]:
        """The error monitor's question: pending errors first detected before ``cutoff``, oldest first
        (every bucket of by-first-detected, merged)."""
        request = {
            "KeyConditionExpression": "#p = :k AND #t < :t",
            "ExpressionAttributeNames": {"#p": "pending", "#t": "first_detected"},
            "ExpressionAttributeValues": {":t": s(time_bound(cutoff, "cutoff"))},
        }
        return self._pending(request)

    def all(self) -> list[PendingError]:
        """Every pending error, oldest first (the sparse by-first-detected index, no scan)."""
        return self._pending(key_query("pending", PENDING))

    def _pending(self, request: Mapping[str, Any]) -> list[PendingError]:
        return [PendingError.from_row(row) for row in PENDING_INDEX.query(
            lambda one: self._reader.query(FAMILY, one), PENDING, request)]


# ----------------------------------------------------------------------------- how the shell asks

def _cmd_pending_errors(q: PendingErrorQueries, args: Mapping[str, Any], now: datetime) -> Answer:
    cutoff = None if args["older_than"] is None else time_bound(now - args["older_than"])
    if args["order"] is not None:
        order = q.find_order(args["order"])
        found = [r for r in order.pending if cutoff is None or r.first_detected < cutoff]
        return Answer(found, footer="" if found else order.summary())
    return Answer(q.detected_before(cutoff) if cutoff is not None else q.all())


def _get_order_errors(q: PendingErrorQueries, path: Mapping[str, str], params: Mapping[str, str],
                      now: datetime) -> Any:
    """An order's pending errors, by its id or InFlow order number (404 for neither); ``notified``
    lists the errors emailed and still reported, so "nothing pending" never looks like "no order"."""
    order = q.find_order(path["order_id"])
    return {"order_id": order.order_id, "order_number": order.order_number, "errors": rows(order.pending),
            "notified": [{"error_hash": h, "notified_at": at} for h, at in order.notified.items()],
            "summary": order.summary()}


def _get_pending_errors(q: PendingErrorQueries, path: Mapping[str, str], params: Mapping[str, str],
                        now: datetime) -> Any:
    """All pending errors, or with ?older_than=30m those past that age (the monitor's question)."""
    older_than = params.get("older_than")
    if older_than is None:
        return {"errors": rows(q.all())}
    try:
        cutoff = now - parse_duration(older_than)
    except InvalidQuery as error:
        raise InvalidQuery(f"older_than: {error}") from None
    return {"cutoff": time_bound(cutoff), "errors": rows(q.detected_before(cutoff))}


COMMANDS = (
    Command("pending-errors", "orders' pending errors, oldest first", _cmd_pending_errors,
            ("order_id", "order_number", "rule", "severity", "first_detected", "last_seen", "message"), args=(
                Arg(("--order",), {"metavar": "NUMBER|ID", "default": None,
                                   "help": "only this order's errors (its InFlow order number or its id)"}),
                Arg(("--older-than",), {"type": parse_duration, "default": None, "metavar": "DURATION",
                                        "help": "only errors first detected more than this long ago (30m, 2h, 1d)"}),
            )),
)
ROUTES = (
    Route("/orders/{order_id}/errors", _get_order_errors),
    Route("/pending-errors", _get_pending_errors),
)
REPORT = (
    Section("pending_errors", "Pending order errors (seed 000)",
            ("order_number", "rule", "severity", "first_detected", "last_seen", "message"), lambda q: rows(q.all())),
)
