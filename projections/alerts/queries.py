"""The alerts' questions: which alerts, by read flag, severity and SKU, newest first (never a scan)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from projections.alerts.fold import SEVERITIES, UNREAD, UNREAD_INDEX, Alert
from projections.unit import (
    Answer, Arg, Command, Filter, InvalidQuery, Reader, Route, Section, choice, flag, key_query, rows, s,
)

FAMILY = "alerts"


def check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise InvalidQuery(f"unknown alert severity {severity!r} (one of {', '.join(SEVERITIES)})")
    return severity


class AlertQueries:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def find(self, unread: bool | None = None, severity: str | None = None, sku: str | None = None,
             *, newest_first: bool = True) -> list[Alert]:
        """Alerts matching every given filter, newest first.

        Index: by-sku when a SKU is given (the narrowest), else by-unread for unread alerts (sparse),
        else by-severity; the other filters become a FilterExpression. With no severity and no SKU
        and not asking for unread ones, the three severities are queried and merged (no scan).
        """
        if severity is not None:
            check_severity(severity)
        where = Filter()
        if sku is not None:
            partitions = [key_query("sku", sku, index="by-sku")]
            _unread_filter(where, unread)
            if severity is not None:
                where.equals("severity", s(severity))
        elif unread:
            if severity is not None:
                where.equals("severity", s(severity))
            # by-unread is sharded: every bucket, merged newest first.
            request = where.apply(key_query("unread", UNREAD))
            return _ordered([Alert.from_row(row) for row in UNREAD_INDEX.query(
                lambda one: self._reader.query(FAMILY, one), UNREAD, request, newest_first=newest_first)],
                newest_first)
        else:
            _unread_filter(where, unread)
            severities = [severity] if severity is not None else list(SEVERITIES)
            partitions = [key_query("severity", one, index="by-severity") for one in severities]
        found: list[Alert] = []
        for request in partitions:
            request["ScanIndexForward"] = not newest_first
            where.apply(request)
            found.extend(Alert.from_row(row) for row in self._reader.query(FAMILY, request))
        return _ordered(found, newest_first)


def _ordered(found: list[Alert], newest_first: bool) -> list[Alert]:
    """By time, then alert id (alerts raised in the same microsecond come back in one order)."""
    return sorted(found, key=lambda a: (a.time or "", a.alert_id), reverse=newest_first)


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
