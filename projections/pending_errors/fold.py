"""The pending order errors view (seed 000): one row per unnotified error of an order.

Each ``OrderValidated`` carries the order's complete current error set: a new error starts its
grace period (first_detected), a repeated one keeps it and refreshes last_seen, message and
details, and an error no longer reported is resolved and leaves the view. ``OrderErrorsNotified``
(the one email was sent) moves the notified errors out of the pending set into ``notified``: an
error stays notified while the order keeps reporting it (re-sent unchanged, or another field
edited), so it never gets a second grace period or a second email; once a validation no longer
reports it, it is forgotten, and if it comes back later it is a new error with its own grace
period and its own email (issue 12 defect 2).

Every row carries ``pending = "PENDING#<bucket>"`` (the partition key of the sparse
``by-first-detected`` index, so "pending errors first detected before T" is a range query per
bucket; sharded by ``PENDING_INDEX`` because every validation of an order with errors rewrites its
rows, more writes than one key value takes at 10,000 events/s) and ``expires_at``, the
table's TTL: first_detected + 7 days, in epoch seconds. A notified error's row carries neither
(it is not pending, so it stays out of the index, and it lives exactly as long as the error is
still reported: a TTL would forget it and the next validation would reopen it).

Every validated order also has its *order row* (sort key ``@order``): its number and when it was
first validated. It outlives its errors (no TTL, never deleted), so "why wasn't SO-000777 sent?"
finds the order by its number after the email went out or the errors were fixed: the order row
alone carries ``indexed_number``, the key of the sparse ``by-order-number`` index (an empty number
is not indexed: DynamoDB refuses an empty index key). A never-validated order has no rows, and its
state is the initial one; ``load(rows(state)) == state`` always holds.

The order row also keeps the order's ``remarks`` as last validated (what an operator judges a
discount error by): personal data of the order's customer, so the view is marked
``personal_data`` and the row shows ``[erased]`` once the customer is forgotten.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from events.envelope import RecordedEvent, format_time
from events.orders import OrderErrorsNotified, OrderValidated
from events.personal import ERASED, revealed
from events.sharding import ShardedKey, bare_value
from projections.view import Row, View, ViewRow

PENDING = "PENDING"
TTL = timedelta(days=7)
# Bucket from the row's key (order_id, error_hash). legacy: rows a deployed table got before the key
# was sharded hold the bare "PENDING" until the family is rebuilt (or the row is rewritten).
PENDING_INDEX = ShardedKey("by-first-detected", "pending", "first_detected", buckets=8, legacy=True)
ORDER_ROW = "@order"  # the order row's sort key: error hashes are hex, the head row is "#"
INDEXED_NUMBER = "indexed_number"  # the by-order-number index's key, on the order row only


@dataclass(frozen=True, kw_only=True)
class PendingError(ViewRow):
    """One pending error of an order: a row of the view (keyed order_id, error_hash) and what its
    queries return. ``pending`` and ``expires_at`` (the TTL) are derived from it."""

    order_id: str
    error_hash: str
    order_number: str = ""
    rule: str
    severity: str
    message: str
    details: Mapping[str, Any]
    first_detected: str
    last_seen: str

    derived = ("pending", "expires_at")
    sharded = (PENDING_INDEX,)

    @property
    def pending(self) -> str:
        """The partition key of the sparse by-first-detected index: "PENDING#<bucket>"."""
        return PENDING_INDEX.value(PENDING, (self.order_id, self.error_hash))

    @property
    def expires_at(self) -> int:
        return expires_at(self.first_detected)


def is_pending(row: Row) -> bool:
    """Whether a stored row is a pending error's (a notified error's row carries no ``pending``)."""
    stored = row.get("pending")
    return isinstance(stored, str) and bare_value(stored) == PENDING


@dataclass(frozen=True, slots=True)
class PendingErrorsState:
    order_id: str
    order_number: str = ""
    errors: Mapping[str, PendingError] = field(default_factory=dict)  # error_hash -> error, sorted
    notified: Mapping[str, str] = field(default_factory=dict)  # error_hash -> when emailed; still reported, sorted
    first_validated: str = ""  # when the order was first validated; "" = never (no order row)
    remarks: str = ""  # the order's remark as last validated, or [erased]


def initial(order_id: str) -> PendingErrorsState:
    return PendingErrorsState(order_id=order_id)


def _state(state: PendingErrorsState, order_number: str, errors: Mapping[str, PendingError],
           notified: Mapping[str, str], first_validated: str, remarks: str) -> PendingErrorsState:
    """The one canonical state for these errors: sorted by hash."""
    return PendingErrorsState(state.order_id, order_number, {h: errors[h] for h in sorted(errors)},
                              {h: notified[h] for h in sorted(notified)}, first_validated, remarks)


def remarks_of(data: OrderValidated) -> str:
    """The order's remark, or ``[erased]`` once its customer was forgotten."""
    order = revealed(data.order)
    if order == ERASED or not isinstance(order, Mapping):
        return ERASED
    remarks = order.get("remarks")
    return remarks if isinstance(remarks, str) else ""


def _plain(value: Any) -> Any:
    """JSON-ish data exactly as it comes back from the view table (numbers as the store reads them)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        number = Decimal(repr(value))
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def apply(state: PendingErrorsState, event: RecordedEvent) -> PendingErrorsState:
    data = event.data
    at = format_time(event.time)
    if isinstance(data, OrderValidated):
        current: dict[str, PendingError] = {}
        # Emailed and still reported: stays notified. Not reported any more: resolved, forgotten.
        notified = {error.error_hash: state.notified[error.error_hash]
                    for error in data.errors if error.error_hash in state.notified}
        for error in data.errors:
            if error.error_hash in notified:
                continue
            seen = state.errors.get(error.error_hash)
            current[error.error_hash] = PendingError(
                order_id=state.order_id,
                error_hash=error.error_hash,
                order_number=data.order_number,
                rule=error.rule,
                severity=error.severity,
                message=error.message,
                details=_plain(error.details),
                first_detected=at if seen is None else seen.first_detected,
                last_seen=at,
            )
        return _state(state, data.order_number, current, notified, state.first_validated or at, remarks_of(data))
    if isinstance(data, OrderErrorsNotified):
        sent = set(data.error_hashes) & set(state.errors)
        if not sent:
            return state
        remaining = {h: e for h, e in state.errors.items() if h not in sent}
        return _state(state, state.order_number, remaining, {**state.notified, **{h: at for h in sent}},
                      state.first_validated, state.remarks)
    return state


def expires_at(first_detected: str) -> int:
    moment = datetime.fromisoformat(first_detected) + TTL
    return calendar.timegm(moment.utctimetuple())


def order_row(state: PendingErrorsState) -> Row:
    """The order row's attributes: its number (indexed when there is one), first validation and remarks."""
    row: Row = {"order_number": state.order_number, "first_validated": state.first_validated,
                "remarks": state.remarks}
    return row | ({INDEXED_NUMBER: state.order_number} if state.order_number else {})


def rows(state: PendingErrorsState) -> Mapping[str | None, Row]:
    order: dict[str | None, Row] = {ORDER_ROW: order_row(state)} if state.first_validated else {}
    notified: dict[str | None, Row] = {error_hash: {"order_number": state.order_number, "notified_at": at}
                                       for error_hash, at in state.notified.items()}
    return order | notified | {error_hash: error.attributes("order_id", "error_hash")
                               for error_hash, error in state.errors.items()}


def load(order_id: str, stored: Mapping[str | None, Row]) -> PendingErrorsState:
    order = stored.get(ORDER_ROW)
    hashes = {str(h): row for h, row in stored.items() if h is not None and h != ORDER_ROW}
    notified = {error_hash: row["notified_at"] for error_hash, row in hashes.items() if "notified_at" in row}
    errors = {
        error_hash: PendingError.from_row({
            **row, "order_id": order_id, "error_hash": error_hash,
            "order_number": row.get("order_number") or "", "details": _plain(row.get("details") or {}),
        })
        for error_hash, row in hashes.items() if "notified_at" not in row
    }
    # Rows written before order rows existed: the number is on every error row.
    first = order if order is not None else hashes[min(hashes)] if hashes else {}
    return _state(initial(order_id), first.get("order_number") or "", errors, notified,
                  (order or {}).get("first_validated") or "", (order or {}).get("remarks") or "")


def measures(before: PendingErrorsState, after: PendingErrorsState) -> dict[str, int]:
    """New errors start a grace period: the dashboard's "pending errors opened"."""
    return {"PendingErrorsOpened": len(after.errors.keys() - before.errors.keys())}


PendingErrorsProjection: View[PendingErrorsState] = View(
    name="pending-errors",
    table="pending-errors",
    category="order",
    key_attr="order_id",
    sort_attr="error_hash",
    initial=initial,
    apply=apply,
    rows=rows,
    load=load,
    measures=measures,
    personal_data=True,
)
