"""The alerts' questions: which alerts, by read flag, severity and SKU, newest first (never a scan)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from events.envelope import format_time, parse_time
from projections.alerts.fold import ALERT_TYPES, SEVERITIES, UNREAD, UNREAD_INDEX, Alert
from projections.unit import (
    Answer, Arg, Command, Filter, InvalidQuery, Reader, Route, Section, choice, flag, key_query, rows, s, time_bound,
)

FAMILY = "alerts"


def check_alert_type(alert_type: str) -> str:
    if alert_type not in ALERT_TYPES:
        raise InvalidQuery(f"unknown alert type {alert_type!r} (one of {', '.join(ALERT_TYPES)})")
    return alert_type


def check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise InvalidQuery(f"unknown alert severity {severity!r} (one of {', '.join(SEVERITIES)})")
    return severity


class AlertQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def find(self, unread: bool | None = None, severity: str | None = None, sku: str | None = None,
             *, alert_type: str | None = None, since: str | datetime | None = None,
             before: str | datetime | None = None, newest_first: bool = True) -> list[Alert]:
        """Alerts matching every given filter, newest first; ``since`` (inclusive) and ``before``
        (exclusive) bound when they were raised.

        Index: by-sku when a SKU is given (the narrowest), else by-unread for unread alerts (sparse,
        and sharded: every bucket is asked), else by-severity; every index is sorted by time, so the
        time bounds are key conditions, and the other filters become a FilterExpression. With no
        severity and no SKU and not asking for unread ones, the three severities are queried and
        merged (no scan).
        """
        if severity is not None:
            check_severity(severity)
        if alert_type is not None:
            check_alert_type(alert_type)
        where = Filter()
        partitions: list[dict[str, Any]] | None
        if alert_type is not None:
            where.equals("alert_type", s(alert_type))
        if sku is not None:
            partitions = [key_query("sku", sku, index="by-sku")]
            _unread_filter(where, unread)
            if severity is not None:
                where.equals("severity", s(severity))
        elif unread:
            partitions = None  # by-unread, sharded: asked below, every bucket
            if severity is not None:
                where.equals("severity", s(severity))
        else:
            _unread_filter(where, unread)
            severities = [severity] if severity is not None else list(SEVERITIES)
            partitions = [key_query("severity", one, index="by-severity") for one in severities]
        low = None if since is None else time_bound(since, "since")
        high = None if before is None else time_bound(before, "before")
        if low is not None and high is not None and low >= high:
            return []  # an empty range (DynamoDB refuses a BETWEEN whose bounds are reversed)
        if partitions is None:
            request = key_query("unread", UNREAD)
            _time_range(request, low, high)
            where.apply(request)
            return _ordered([Alert.from_row(row) for row in UNREAD_INDEX.query(
                lambda one: self._reader.query(FAMILY, one), UNREAD, request, newest_first=newest_first)],
                newest_first)
        found: list[Alert] = []
        for request in partitions:
            request["ScanIndexForward"] = not newest_first
            _time_range(request, low, high)
            where.apply(request)
            found.extend(Alert.from_row(row) for row in self._reader.query(FAMILY, request))
        return _ordered(found, newest_first)


def _ordered(found: list[Alert], newest_first: bool) -> list[Alert]:
    """By time, then alert id (alerts raised in the same microsecond come back in one order)."""
    return sorted(found, key=lambda a: (a.time or "", a.alert_id), reverse=newest_first)


def _time_range(request: dict[str, Any], since: str | None, before: str | None) -> None:
    """Bound the index's sort key (``time``, when the alert was raised) in the key condition: a key
    attribute cannot be filtered, so an exclusive ``before`` with a ``since`` is BETWEEN since and the
    microsecond before it (times are stored to the microsecond)."""
    if since is None and before is None:
        return
    request["ExpressionAttributeNames"]["#t"] = "time"
    values = request["ExpressionAttributeValues"]
    if since is not None and before is not None:
        request["KeyConditionExpression"] += " AND #t BETWEEN :since AND :last"
        values[":since"], values[":last"] = s(since), s(format_time(parse_time(before) - timedelta(microseconds=1)))
    elif since is not None:
        request["KeyConditionExpression"] += " AND #t >= :since"
        values[":since"] = s(since)
    else:
        request["KeyConditionExpression"] += " AND #t < :before"
        values[":before"] = s(str(before))


def _unread_filter(where: Filter, unread: bool | None) -> None:
    if unread is True:
        where.present("unread")  # "UNREAD#<bucket>" (or a legacy "UNREAD"): present only while unread
    elif unread is False:
        where.missing("unread")


# ----------------------------------------------------------------------------- how the shell asks

def _cmd_alerts(q: AlertQueries, args: Mapping[str, Any], now: datetime) -> Answer:
    return Answer(q.find(unread=args["unread"], severity=args["severity"], sku=args["sku"]))


def _get_alerts(q: AlertQueries, path: Mapping[str, str], params: Mapping[str, str], now: datetime) -> Any:
    """?unread=true&severity=critical&sku=PROD-1, newest first."""
    return {"alerts": rows(q.find(unread=flag(params, "unread"), severity=params.get("severity") or None,
                                  sku=params.get("sku") or None))}


COMMANDS = (
    Command("alerts", "alerts, newest first", _cmd_alerts,
            ("time", "severity", "alert_type", "sku", "subject", "message", "read", "alert_id"), args=(
                Arg(("--unread",), {"dest": "unread", "action": "store_const", "const": True, "default": None,
                                    "help": "only unread alerts"}, group="read"),
                Arg(("--read",), {"dest": "unread", "action": "store_const", "const": False,
                                  "help": "only read alerts"}, group="read"),
                Arg(("--severity",), {"type": choice(SEVERITIES, "severity", str.lower), "default": None,
                                      "help": " | ".join(SEVERITIES)}),
                Arg(("--sku",), {"default": None}),
            )),
)
ROUTES = (Route("/alerts", _get_alerts),)
REPORT = (
    Section("alerts", "Alerts, newest first (seeds 003/004)",
            ("time", "severity", "alert_type", "sku", "read", "message"), lambda q: rows(q.find())),
)
