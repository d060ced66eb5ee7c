"""`dynafold query ...`: the views' questions on the command line (tables by default, --json for scripts).

A lookup that finds nothing prints ``(none)`` (``[]``/``null`` with --json) and exits 0; a bad
argument prints one line and exits 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from processors.local.tables import local_tables
from projections.queries import (
    ALERT_SEVERITIES,
    DELIVERY_STATUSES,
    InvalidQuery,
    ViewQueries,
    parse_duration,
    ViewRow,
    time_bound,
)

if TYPE_CHECKING:
    from processors.cli.main import Context

# ----------------------------------------------------------------------------- argument types

def duration(text: str) -> timedelta:
    """30m, 2h, 1d, 1h30m (s, m, h, d, w)."""
    try:
        return parse_duration(text)
    except InvalidQuery as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def moment(text: str) -> str:
    """An ISO 8601 time (naive = UTC) or `now`, in the stored time form."""
    if text.strip().lower() == "now":
        return time_bound(datetime.now(timezone.utc))
    try:
        return time_bound(text)
    except InvalidQuery:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use ISO 8601, e.g. 2024-05-01T12:00:00Z, or `now`") from None


def _choice(choices: Sequence[str], what: str, normalise: Callable[[str], str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = normalise(text.strip())
        if value not in choices:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r} (one of {', '.join(choices)})")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


status_arg = _choice(DELIVERY_STATUSES, "status", lambda s: s.upper().replace("-", "_"))
severity_arg = _choice(ALERT_SEVERITIES, "severity", str.lower)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


# ----------------------------------------------------------------------------- handlers

def _queries(ctx: "Context") -> ViewQueries:

    return ViewQueries(ctx.client(), local_tables(ctx.table_prefix).views)


def _show(ctx: "Context", rows: Sequence[ViewRow], columns: Sequence[str],
          cells: Callable[[ViewRow], dict[str, Any]] | None = None, *, footer: str = "") -> None:
    from processors.cli.output import emit, table

    human = table([cells(r) if cells else r.to_dict() for r in rows], columns, max_width=60)
    emit([r.to_dict() for r in rows], as_json=ctx.as_json, human=human + (f"\n{footer}" if footer and rows else ""))


def cmd_pending_errors(ctx: "Context", args: argparse.Namespace) -> int:
    q = _queries(ctx)
    cutoff = None
    if args.older_than is not None:
        cutoff = time_bound(datetime.now(timezone.utc) - args.older_than)
    if args.order is not None:
        rows = q.pending_errors_by_order(args.order)
        if cutoff is not None:
            rows = [r for r in rows if r.first_detected is not None and r.first_detected < cutoff]
    elif cutoff is not None:
        rows = q.pending_errors_detected_before(cutoff)
    else:
        rows = q.pending_errors()
    _show(ctx, rows, ["order_id", "order_number", "rule", "severity", "first_detected", "last_seen", "message"])
    return 0


def cmd_delivery(ctx: "Context", args: argparse.Namespace) -> int:
    rows = _queries(ctx).delivery_by_message(args.message_id)
    history = "\n".join(
        f"{d.delivery_id} attempt history:\n" + "\n".join(f"  {_compact(h)}" for h in d.retry_history)
        for d in rows if d.retry_history
    )
    _show(ctx, rows, ["delivery_id", "status", "attempts", "target_url", "next_retry_at", "delivered_at",
                      "last_result", "updated_at"], footer=history)
    return 0


def cmd_deliveries(ctx: "Context", args: argparse.Namespace) -> int:
    q = _queries(ctx)
    if args.status is not None:
        rows = q.deliveries_by_status(args.status, args.due_before, sender_id=args.sender)
    elif args.sender is not None:
        rows = q.deliveries_by_sender(args.sender, due_before=args.due_before)
    else:
        raise InvalidQuery("query deliveries: give --status and/or --sender")
    _show(ctx, rows, ["delivery_id", "status", "attempts", "due_at", "next_retry_at", "target_url", "updated_at"])
    return 0


def _inventory_cells(row: Any) -> dict[str, Any]:
    broadcast = row.last_broadcast
    return {**row.to_dict(), "broadcast": None if broadcast is None else broadcast.count,
            "broadcast_at": None if broadcast is None else broadcast.time}


_INVENTORY_COLUMNS = ["sku", "physical", "buffer", "available", "broadcast", "broadcast_at", "updated_at"]


def cmd_inventory(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table

    q = _queries(ctx)
    if args.sku is not None:
        item = q.inventory_item(args.sku)
        rows = [] if item is None else [item]
        emit(None if item is None else item.to_dict(), as_json=ctx.as_json,
             human=table([_inventory_cells(r) for r in rows], _INVENTORY_COLUMNS))
        return 0
    rows = sorted(q.inventory_all(args.page_size), key=lambda r: r.sku)
    _show(ctx, rows, _INVENTORY_COLUMNS, _inventory_cells)
    return 0


def cmd_returns(ctx: "Context", args: argparse.Namespace) -> int:
    rows = _queries(ctx).returns_of(args.sku)
    _show(ctx, rows, ["time", "quantity", "disposition", "restocked", "order_id", "event_id"])
    return 0


def cmd_alerts(ctx: "Context", args: argparse.Namespace) -> int:
    rows = _queries(ctx).alerts(unread=args.unread, severity=args.severity, sku=args.sku)
    _show(ctx, rows, ["time", "severity", "alert_type", "sku", "subject", "message", "read", "alert_id"])
    return 0


def cmd_all(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.operations.views_report import collect, render

    views = collect(_queries(ctx))
    emit(views, as_json=ctx.as_json, human=render(views))
    return 0


def _compact(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))


# ----------------------------------------------------------------------------- registration

def register(sub: Any, command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add `dynafold query <view> ...` to the CLI (``command`` is build_parser's helper)."""
    query = sub.add_parser("query", help="ask the views (pending errors, deliveries, inventory, alerts)",
                           description="ask the views; tables by default, --json for scripts",
                           parents=[common])
    views = query.add_subparsers(dest="query_command", required=True, parser_class=type(query))

    command("all", cmd_all, "every view at a glance (what `dynafold demo` ends with)", views)

    p = command("pending-errors", cmd_pending_errors, "orders' pending errors, oldest first", views)
    p.add_argument("--order", metavar="ORDER_ID", default=None, help="only this order's errors")
    p.add_argument("--older-than", type=duration, default=None, metavar="DURATION",
                   help="only errors first detected more than this long ago (30m, 2h, 1d)")

    p = command("delivery", cmd_delivery, "what happened to a message: its delivery per sender", views)
    p.add_argument("message_id")

    p = command("deliveries", cmd_deliveries, "deliveries by status and/or sender", views)
    p.add_argument("--status", type=status_arg, default=None, help=" | ".join(DELIVERY_STATUSES))
    p.add_argument("--due-before", type=moment, default=None, metavar="TIME",
                   help="only deliveries due before TIME (ISO 8601 or `now`)")
    p.add_argument("--sender", metavar="SENDER_ID", default=None)

    p = command("inventory", cmd_inventory, "stock of one SKU, or of every SKU", views)
    p.add_argument("sku", nargs="?", default=None)
    p.add_argument("--page-size", type=positive_int, default=100, help="SKUs per scan page (default 100)")

    p = command("returns", cmd_returns, "a SKU's returns in time order", views)
    p.add_argument("sku")

    p = command("alerts", cmd_alerts, "alerts, newest first", views)
    read = p.add_mutually_exclusive_group()
    read.add_argument("--unread", dest="unread", action="store_const", const=True, default=None,
                      help="only unread alerts")
    read.add_argument("--read", dest="unread", action="store_const", const=False, help="only read alerts")
    p.add_argument("--severity", type=severity_arg, default=None, help=" | ".join(ALERT_SEVERITIES))
    p.add_argument("--sku", default=None)
