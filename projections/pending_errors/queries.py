"""The pending errors' questions: an order's errors, and the error monitor's "detected before T"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from projections.pending_errors.fold import PENDING, PENDING_INDEX, PendingError, is_pending
from projections.unit import (
    Answer, Arg, Command, InvalidQuery, Reader, Route, Section, key_query, parse_duration, rows, s, time_bound,
)
from projections.view import HEAD_SORT_KEY

FAMILY = "pending-errors"


class PendingErrorQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def by_order(self, order_id: str) -> list[PendingError]:
        """The order's pending errors, by error hash (never the order's head row, nor an error already
        notified and still reported: that row is not pending)."""
        # The head row shares the partition; a key attribute cannot be filtered server-side.
        found = self._reader.query(FAMILY, key_query("order_id", order_id))
        return [PendingError.from_row(row) for row in found
                if row.get("error_hash") != HEAD_SORT_KEY and is_pending(row)]

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
        found = q.by_order(args["order"])
        if cutoff is not None:
            found = [r for r in found if r.first_detected < cutoff]
    elif cutoff is not None:
        found = q.detected_before(cutoff)
    else:
        found = q.all()
    return Answer(found)


def _get_order_errors(q: PendingErrorQueries, path: Mapping[str, str], params: Mapping[str, str],
                      now: datetime) -> Any:
    return {"order_id": path["order_id"], "errors": rows(q.by_order(path["order_id"]))}


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
                Arg(("--order",), {"metavar": "ORDER_ID", "default": None, "help": "only this order's errors"}),
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
