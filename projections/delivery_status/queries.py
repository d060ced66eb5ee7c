"""The deliveries' questions: what happened to a message, and deliveries by status or sender (seeds 001, 002)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from projections.delivery_status.fold import SENDER_INDEX, STATUS_INDEX, STATUSES, DeliveryStatus
from projections.unit import (
    Answer, Arg, Command, Filter, InvalidQuery, Reader, Route, Section, choice, found, key_query, moment, rows, s,
    time_bound,
)

FAMILY = "delivery-status"


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidQuery(f"unknown delivery status {status!r} (one of {', '.join(STATUSES)})")
    return status


class DeliveryQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def by_message(self, message_id: str) -> list[DeliveryStatus]:
        """Every delivery of a message id (one per sender that used it), by sender."""
        found = [DeliveryStatus.from_row(row)
                 for row in self._reader.query(FAMILY, key_query("message_id", message_id, index="by-message"))]
        return sorted(found, key=lambda d: (d.sender_id or "", d.delivery_id))

    def message(self, message_id: str) -> list[DeliveryStatus]:
        """A message asked for by id: its deliveries, or NotFound (a 404, exit 4) when there is none."""
        return found(self.by_message(message_id), f"message {message_id!r} (no delivery of it)")

    def by_status(self, status: str, due_before: str | datetime | None = None, *, since: str | datetime | None = None,
                  sender_id: str | None = None) -> list[DeliveryStatus]:
        """Deliveries in ``status``, by due time (the next retry, else the last change); ``due_before``
        keeps those due strictly before it, ``since`` those due at or after it (every bucket of
        by-status, merged)."""
        request = key_query("status_shard", check_status(status))
        if due_before is not None or since is not None:
            request["ExpressionAttributeNames"]["#d"] = "due_at"
        if due_before is not None and since is not None:
            request["KeyConditionExpression"] += " AND #d BETWEEN :s AND :d"
        elif due_before is not None:
            request["KeyConditionExpression"] += " AND #d < :d"
        elif since is not None:
            request["KeyConditionExpression"] += " AND #d >= :s"
        if since is not None:
            request["ExpressionAttributeValues"][":s"] = s(time_bound(since, "since"))
        if due_before is not None:
            request["ExpressionAttributeValues"][":d"] = s(time_bound(due_before, "due before"))
        if sender_id is not None:
            Filter().equals("sender_id", s(sender_id)).apply(request)
        found = [DeliveryStatus.from_row(row) for row in STATUS_INDEX.query(
            lambda one: self._reader.query(FAMILY, one), status, request)]
        if due_before is not None and since is not None:  # BETWEEN includes its upper end
            bound = time_bound(due_before, "due before")
            found = [d for d in found if (d.due_at or "") < bound]
        return found

    def by_sender(self, sender_id: str, *, status: str | None = None,
                  due_before: str | datetime | None = None) -> list[DeliveryStatus]:
        """A sender's deliveries, least recently updated first; optionally one status / due before
        (every bucket of by-sender, merged)."""
        request = key_query("sender_shard", sender_id)
        where = Filter()
        if status is not None:
            where.equals("status", s(check_status(status)))
        if due_before is not None:
            where.less_than("due_at", s(time_bound(due_before, "due before")))
        where.apply(request)
        return [DeliveryStatus.from_row(row) for row in SENDER_INDEX.query(
            lambda one: self._reader.query(FAMILY, one), sender_id, request)]


# ----------------------------------------------------------------------------- how the shell asks

def _compact(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def _cmd_delivery_status(q: DeliveryQueries, args: Mapping[str, Any], now: datetime) -> Answer:
    """One message's deliveries (MESSAGE_ID), or deliveries by status and/or sender."""
    filters = args["status"] is not None or args["sender"] is not None or args["due_before"] is not None
    if args["message_id"] is not None:
        if filters:
            raise InvalidQuery("query delivery-status: give a MESSAGE_ID or --status/--sender, not both")
        deliveries = q.message(args["message_id"])
        history = "\n".join(
            f"{d.delivery_id} attempt history:\n" + "\n".join(f"  {_compact(asdict(h))}" for h in d.retry_history)
            for d in deliveries if d.retry_history
        )
        return Answer(deliveries, footer=history)
    if args["status"] is not None:
        return Answer(q.by_status(args["status"], args["due_before"], sender_id=args["sender"]))
    if args["sender"] is not None:
        return Answer(q.by_sender(args["sender"], due_before=args["due_before"]))
    raise InvalidQuery("query delivery-status: give a MESSAGE_ID, or --status and/or --sender")


def _get_message(q: DeliveryQueries, path: Mapping[str, str], params: Mapping[str, str], now: datetime) -> Any:
    message_id = path["message_id"]
    return {"message_id": message_id, "deliveries": rows(q.message(message_id))}


def _all_deliveries(q: DeliveryQueries) -> list[dict[str, Any]]:
    found = [row for status in STATUSES for row in q.by_status(status)]
    found.sort(key=lambda d: d.delivery_id)
    return rows(found)


COMMANDS = (
    Command(FAMILY, "what happened to a message (MESSAGE_ID: its delivery per sender), or deliveries by "
                    "status and/or sender", _cmd_delivery_status,
            ("delivery_id", "status", "attempts", "target_url", "due_at", "next_retry_at", "delivered_at",
             "last_result", "updated_at"), args=(
                Arg(("message_id",), {"nargs": "?", "default": None, "metavar": "MESSAGE_ID"}),
                Arg(("--status",), {"type": choice(STATUSES, "status", lambda v: v.upper().replace("-", "_")),
                                    "default": None, "help": " | ".join(STATUSES)}),
                Arg(("--due-before",), {"type": moment, "default": None, "metavar": "TIME",
                                        "help": "only deliveries due before TIME (ISO 8601 or `now`)"}),
                Arg(("--sender",), {"metavar": "SENDER_ID", "default": None}),
            ), aliases=("delivery", "deliveries")),
)
ROUTES = (Route("/messages/{message_id}", _get_message),)
REPORT = (
    Section("deliveries", "Webhook deliveries (seeds 001/002)",
            ("delivery_id", "status", "attempts", "next_retry_at", "delivered_at", "target_url"), _all_deliveries),
)
