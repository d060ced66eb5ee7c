"""Typed reads over the view tables: the questions operators and other services ask.

Every question is answered by a key lookup or a Query on the table or one of its GSIs, paginated
with ``LastEvaluatedKey``; the only Scan is "all SKUs", one bounded page at a time with a
continuation token. Head rows of multi-row views (sort key ``"#"``) are never returned.

Times are the events' ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` strings, which order as text; a bound given
here (a datetime or any ISO 8601 string) is normalised to that form before it is compared.

    q = ViewQueries(client, local_tables("dynafold-").views)
    q.pending_errors_detected_before("2024-05-01T12:00:00Z")
    q.alerts(unread=True, severity="critical")
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from events.envelope import format_time
from events.errors import DynafoldError
from projections.view import HEAD_SORT_KEY
from projections.view_store import from_item

DELIVERY_STATUSES = ("PENDING", "SUCCESS", "FAILED", "RETRY_SCHEDULED", "MAX_RETRIES_EXCEEDED")
ALERT_SEVERITIES = ("info", "warning", "critical")
PENDING, UNREAD = "PENDING", "UNREAD"  # the sparse GSI partition values


class InvalidQuery(DynafoldError, ValueError):
    """A query argument is wrong (unknown status, unparseable time, bad continuation token)."""


# ----------------------------------------------------------------------------- typed rows

R = TypeVar("R", bound="ViewRow")


@dataclass(frozen=True)
class ViewRow:
    """Base of every typed row: the row's attributes by name, plus what the schema does not know."""

    stream_id: str | None = None
    stream_version: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_row(cls: type[R], row: Mapping[str, Any]) -> R:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {name: cls._convert(name, value) for name, value in row.items() if name in names}
        return cls(**known, extra={name: value for name, value in row.items() if name not in names})

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        return value

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON-able data, attribute names as stored."""
        base = ("stream_id", "stream_version")
        names = [f.name for f in dataclasses.fields(self) if f.name not in (*base, "extra")]
        data = {name: _plain(getattr(self, name)) for name in (*names, *base)}
        return {**data, **self.extra}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class LastBroadcast:
    count: int
    tx_id: str
    time: str


@dataclass(frozen=True, kw_only=True)
class InventoryItem(ViewRow):
    sku: str
    physical: int = 0
    buffer: int = 0
    available: int = 0
    last_broadcast: LastBroadcast | None = None
    updated_at: str | None = None

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        if name == "last_broadcast" and isinstance(value, Mapping):
            return LastBroadcast(int(value["count"]), str(value["tx_id"]), str(value["time"]))
        return value


@dataclass(frozen=True, kw_only=True)
class InventoryReturn(ViewRow):
    sku: str
    returned_at: str  # "<time>#<zero-padded version>": sorts in time order
    time: str | None = None
    quantity: int = 0
    disposition: str | None = None
    order_id: str | None = None
    restocked: bool = False
    event_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class PendingError(ViewRow):
    order_id: str
    error_hash: str
    order_number: str | None = None
    rule: str | None = None
    severity: str | None = None
    message: str | None = None
    details: Any = None
    first_detected: str | None = None
    last_seen: str | None = None
    pending: str | None = None
    expires_at: int | None = None


@dataclass(frozen=True, kw_only=True)
class DeliveryStatus(ViewRow):
    delivery_id: str  # "<sender>:<message>"
    sender_id: str | None = None
    message_id: str | None = None
    target_url: str | None = None
    status: str | None = None
    attempts: int = 0
    next_retry_at: str | None = None
    due_at: str | None = None
    retry_history: tuple[Any, ...] = ()
    last_result: Any = None
    delivered_at: str | None = None
    last_attempt_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        if name == "retry_history" and isinstance(value, list):
            return tuple(value)
        return value


@dataclass(frozen=True, kw_only=True)
class Alert(ViewRow):
    alert_id: str
    alert_type: str | None = None
    severity: str | None = None
    subject: str | None = None
    sku: str | None = None
    message: str | None = None
    time: str | None = None
    read: bool = False
    read_at: str | None = None
    read_by: str | None = None
    cause_event_id: str | None = None
    unread: str | None = None  # "UNREAD" only while unread (the sparse index key)

    @property
    def is_unread(self) -> bool:
        return self.unread == UNREAD


# ----------------------------------------------------------------------------- arguments

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """30m, 2h, 1d, 1h30m (s, m, h, d, w): how far back a question looks (e.g. --older-than)."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise InvalidQuery(f"invalid duration {text!r}: use a number and a unit, e.g. 30m, 2h, 1d")
    return timedelta(seconds=sum(int(n) * _DURATION_UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", value)))


def time_bound(value: str | datetime, what: str = "time") -> str:
    """Any ISO 8601 time (or an aware datetime) in the stored form; naive times are UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)  # 3.11+: "Z", fractions, dates alone
        except ValueError:
            raise InvalidQuery(f"{what}: expected an ISO 8601 time like 2024-05-01T12:00:00Z, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_time(moment)


def check_status(status: str) -> str:
    if status not in DELIVERY_STATUSES:
        raise InvalidQuery(f"unknown delivery status {status!r} (one of {', '.join(DELIVERY_STATUSES)})")
    return status


def check_severity(severity: str) -> str:
    if severity not in ALERT_SEVERITIES:
        raise InvalidQuery(f"unknown alert severity {severity!r} (one of {', '.join(ALERT_SEVERITIES)})")
    return severity


def _encode_token(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        key = None
    if not isinstance(key, dict) or not key:
        raise InvalidQuery(f"invalid continuation token {token!r}")
    return key


class _Filter:
    """Builds one FilterExpression (AND of parts) with its names and values."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def equals(self, attr: str, value: dict[str, Any]) -> "_Filter":
        n = len(self.parts)
        self.parts.append(f"#f{n} = :f{n}")
        self.names[f"#f{n}"], self.values[f":f{n}"] = attr, value
        return self

    def less_than(self, attr: str, value: dict[str, Any]) -> "_Filter":
        n = len(self.parts)
        self.parts.append(f"#f{n} < :f{n}")
        self.names[f"#f{n}"], self.values[f":f{n}"] = attr, value
        return self

    def missing(self, attr: str) -> "_Filter":
        n = len(self.parts)
        self.parts.append(f"attribute_not_exists(#f{n})")
        self.names[f"#f{n}"] = attr
        return self

    def apply(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.parts:
            kwargs["FilterExpression"] = " AND ".join(self.parts)
            kwargs.setdefault("ExpressionAttributeNames", {}).update(self.names)
            if self.values:
                kwargs.setdefault("ExpressionAttributeValues", {}).update(self.values)
        return kwargs


def _s(value: str) -> dict[str, str]:
    return {"S": value}


# ----------------------------------------------------------------------------- queries

class ViewQueries:
    """Read questions over the view tables.

    ``views`` maps table family ("inventory", "pending-errors", ...) to the physical table name
    (``Tables.views``; a ``Tables`` is accepted too), so a rebuilt version is read after a switch.
    """

    def __init__(self, client: Any, views: Mapping[str, str] | Any) -> None:
        self._client = client
        self._views: Mapping[str, str] = getattr(views, "views", views)

    def table(self, family: str) -> str:
        try:
            return self._views[family]
        except KeyError:
            raise InvalidQuery(f"no table configured for view {family!r}") from None

    # -- pending errors (seed 000)

    def pending_errors_by_order(self, order_id: str) -> list[PendingError]:
        """The order's pending errors, by error hash (never the order's head row)."""
        # The head row shares the partition; a key attribute cannot be filtered server-side.
        kwargs = self._key_query("pending-errors", "order_id", order_id)
        return [PendingError.from_row(row) for row in self._rows(kwargs) if row.get("error_hash") != HEAD_SORT_KEY]

    def pending_errors_detected_before(self, cutoff: str | datetime) -> list[PendingError]:
        """The error monitor's question: pending errors first detected before ``cutoff``, oldest first."""
        kwargs = {
            "TableName": self.table("pending-errors"),
            "IndexName": "by-first-detected",
            "KeyConditionExpression": "#p = :p AND #t < :t",
            "ExpressionAttributeNames": {"#p": "pending", "#t": "first_detected"},
            "ExpressionAttributeValues": {":p": _s(PENDING), ":t": _s(time_bound(cutoff, "cutoff"))},
        }
        return [PendingError.from_row(row) for row in self._rows(kwargs)]

    def pending_errors(self) -> list[PendingError]:
        """Every pending error, oldest first (the sparse by-first-detected index, no scan)."""
        kwargs = {
            "TableName": self.table("pending-errors"),
            "IndexName": "by-first-detected",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "pending"},
            "ExpressionAttributeValues": {":p": _s(PENDING)},
        }
        return [PendingError.from_row(row) for row in self._rows(kwargs)]

    # -- webhook deliveries (seeds 001, 002)

    def delivery_by_message(self, message_id: str) -> list[DeliveryStatus]:
        """Every delivery of a message id (one per sender that used it), by sender."""
        kwargs = self._key_query("delivery-status", "message_id", message_id, index="by-message")
        rows = [DeliveryStatus.from_row(row) for row in self._rows(kwargs)]
        return sorted(rows, key=lambda d: (d.sender_id or "", d.delivery_id))

    def deliveries_by_status(self, status: str, due_before: str | datetime | None = None, *,
                             sender_id: str | None = None) -> list[DeliveryStatus]:
        """Deliveries in ``status``, by due time; ``due_before`` keeps those due strictly before it."""
        kwargs: dict[str, Any] = {
            "TableName": self.table("delivery-status"),
            "IndexName": "by-status",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": _s(check_status(status))},
        }
        if due_before is not None:
            kwargs["KeyConditionExpression"] += " AND #d < :d"
            kwargs["ExpressionAttributeNames"]["#d"] = "due_at"
            kwargs["ExpressionAttributeValues"][":d"] = _s(time_bound(due_before, "due before"))
        if sender_id is not None:
            _Filter().equals("sender_id", _s(sender_id)).apply(kwargs)
        return [DeliveryStatus.from_row(row) for row in self._rows(kwargs)]

    def deliveries_by_sender(self, sender_id: str, *, status: str | None = None,
                             due_before: str | datetime | None = None) -> list[DeliveryStatus]:
        """A sender's deliveries, least recently updated first; optionally one status / due before."""
        kwargs = self._key_query("delivery-status", "sender_id", sender_id, index="by-sender")
        where = _Filter()
        if status is not None:
            where.equals("status", _s(check_status(status)))
        if due_before is not None:
            where.less_than("due_at", _s(time_bound(due_before, "due before")))
        where.apply(kwargs)
        return [DeliveryStatus.from_row(row) for row in self._rows(kwargs)]

    # -- inventory (seed 004)

    def inventory_item(self, sku: str) -> InventoryItem | None:
        item = self._client.get_item(TableName=self.table("inventory"), Key={"sku": _s(sku)}).get("Item")
        return None if item is None else InventoryItem.from_row(from_item(item))

    def inventory_page(self, limit: int = 100,
                       start_token: str | None = None) -> tuple[list[InventoryItem], str | None]:
        """One page of all SKUs (a bounded Scan, in no particular order) and the token for the next.

        The token is None when there is nothing more.
        """
        if limit < 1:
            raise InvalidQuery(f"page limit must be >= 1, got {limit}")
        kwargs: dict[str, Any] = {"TableName": self.table("inventory")}
        if start_token:
            kwargs["ExclusiveStartKey"] = _decode_token(start_token)
        rows: list[InventoryItem] = []
        while True:
            page = self._client.scan(**kwargs, Limit=limit - len(rows))
            rows.extend(InventoryItem.from_row(from_item(item)) for item in page["Items"])
            last = page.get("LastEvaluatedKey")
            if last is None:
                return rows, None
            if len(rows) >= limit:
                return rows, _encode_token(last)
            kwargs["ExclusiveStartKey"] = last  # a short page (1 MB limit): keep filling this one

    def inventory_all(self, page_size: int = 100) -> Iterator[InventoryItem]:
        token: str | None = None
        while True:
            rows, token = self.inventory_page(page_size, token)
            yield from rows
            if token is None:
                return

    def returns_of(self, sku: str) -> list[InventoryReturn]:
        """The SKU's returns in time order."""
        kwargs = self._key_query("inventory-returns", "sku", sku)
        return [InventoryReturn.from_row(row) for row in self._rows(kwargs)
                if row.get("returned_at") != HEAD_SORT_KEY]

    # -- alerts (seed 004)

    def alerts(self, unread: bool | None = None, severity: str | None = None, sku: str | None = None,
               *, newest_first: bool = True) -> list[Alert]:
        """Alerts matching every given filter, newest first.

        Index: by-sku when a SKU is given (the narrowest), else by-unread for unread alerts (sparse),
        else by-severity; the other filters become a FilterExpression. With no severity and no SKU
        and not asking for unread ones, the three severities are queried and merged (no scan).
        """
        if severity is not None:
            check_severity(severity)
        where = _Filter()
        if sku is not None:
            kwargs = self._key_query("alerts", "sku", sku, index="by-sku")
            self._unread_filter(where, unread)
            if severity is not None:
                where.equals("severity", _s(severity))
            partitions = [kwargs]
        elif unread:
            kwargs = self._key_query("alerts", "unread", UNREAD, index="by-unread")
            if severity is not None:
                where.equals("severity", _s(severity))
            partitions = [kwargs]
        else:
            self._unread_filter(where, unread)
            severities = [severity] if severity is not None else list(ALERT_SEVERITIES)
            partitions = [self._key_query("alerts", "severity", s, index="by-severity") for s in severities]
        found: list[Alert] = []
        for kwargs in partitions:
            kwargs["ScanIndexForward"] = not newest_first
            where.apply(kwargs)
            found.extend(Alert.from_row(row) for row in self._rows(kwargs))
        found.sort(key=lambda a: (a.time or "", a.alert_id), reverse=newest_first)
        return found

    @staticmethod
    def _unread_filter(where: _Filter, unread: bool | None) -> None:
        if unread is True:
            where.equals("unread", _s(UNREAD))
        elif unread is False:
            where.missing("unread")

    # -- plumbing

    def _key_query(self, family: str, attr: str, value: str, *, index: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.table(family),
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": attr},
            "ExpressionAttributeValues": {":k": _s(value)},
        }
        if index is not None:
            kwargs["IndexName"] = index
        return kwargs

    def _rows(self, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every matching row of a Query, following LastEvaluatedKey."""
        request = dict(kwargs)
        while True:
            page = self._client.query(**request)
            for item in page["Items"]:
                yield from_item(item)
            last = page.get("LastEvaluatedKey")
            if last is None:
                return
            request["ExclusiveStartKey"] = last
