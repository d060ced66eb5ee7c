"""A view as a unit: its fold, its one row type, its questions, and how the shell asks them.

Each view package (``projections/<view>/``) builds one ``ViewUnit``; ``projections/registry.py``
lists them. The CLI (`dynafold query ...`), the HTTP read routes, the views report and the
rebuild iterate the registry, so a new queryable view is its package, one registry line and its
tables in template.yaml.

Everything here is pure. A view's questions build DynamoDB request parameters and read through a
``Reader`` (``projections/queries.py`` is the one over DynamoDB); the shell turns the ``Command``,
``Route`` and ``Section`` declarations into argparse subcommands, HTTP routes and report sections.

Times are the events' ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` strings, which order as text; a bound given
to a question (a datetime or any ISO 8601 string) is normalised to that form before it is compared.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar

from events.envelope import format_time
from events.errors import DynafoldError, NotFound  # the one not-found: a route's 404, the CLI's exit 4
from projections.view import Row, View, ViewRow


T = TypeVar("T")


class InvalidQuery(DynafoldError, ValueError):
    """A query argument is wrong (unknown status, unparseable time, bad continuation token)."""


def found(answer: T | None, what: str) -> T:
    """A question about one thing: its answer (a row, or the rows it has), or NotFound naming what
    was asked for. The view's lookup calls this once, so the CLI (exit 4) and the routes (404)
    answer a missing thing alike."""
    if answer is None or (isinstance(answer, list) and not answer):
        raise NotFound(what)
    return answer


# ----------------------------------------------------------------------------- reading

class Reader(Protocol):
    """Reads view tables by family ("inventory", "alerts", ...); rows come back as plain values."""

    def get(self, family: str, key: Mapping[str, str]) -> Row | None: ...

    def query(self, family: str, request: Mapping[str, Any]) -> Iterator[Row]:
        """Every row of one Query (KeyConditionExpression, IndexName, ...; no TableName), all pages."""
        ...

    def scan(
        self, family: str, limit: int, start: Mapping[str, Any] | None
    ) -> tuple[list[Row], Mapping[str, Any] | None]:
        """One Scan page of at most ``limit`` items and its LastEvaluatedKey (None at the end)."""
        ...


def s(value: str) -> dict[str, str]:
    return {"S": value}


def key_query(attr: str, value: str, *, index: str | None = None) -> dict[str, Any]:
    """Query parameters for every row whose ``attr`` (a key of the table or of ``index``) is ``value``."""
    request: dict[str, Any] = {
        "KeyConditionExpression": "#k = :k",
        "ExpressionAttributeNames": {"#k": attr},
        "ExpressionAttributeValues": {":k": s(value)},
    }
    if index is not None:
        request["IndexName"] = index
    return request


class Filter:
    """Builds one FilterExpression (AND of parts) with its names and values."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def _add(self, template: str, attr: str, value: dict[str, Any] | None = None) -> "Filter":
        n = len(self.parts)
        self.parts.append(template.format(name=f"#f{n}", value=f":f{n}"))
        self.names[f"#f{n}"] = attr
        if value is not None:
            self.values[f":f{n}"] = value
        return self

    def equals(self, attr: str, value: dict[str, Any]) -> "Filter":
        return self._add("{name} = {value}", attr, value)

    def less_than(self, attr: str, value: dict[str, Any]) -> "Filter":
        return self._add("{name} < {value}", attr, value)

    def missing(self, attr: str) -> "Filter":
        return self._add("attribute_not_exists({name})", attr)

    def present(self, attr: str) -> "Filter":
        return self._add("attribute_exists({name})", attr)

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.parts:
            request["FilterExpression"] = " AND ".join(self.parts)
            request.setdefault("ExpressionAttributeNames", {}).update(self.names)
            if self.values:
                request.setdefault("ExpressionAttributeValues", {}).update(self.values)
        return request


def encode_token(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).decode()


MAX_KEY_BYTES = 2048  # DynamoDB's partition key limit, in UTF-8 bytes


def decode_token(token: str) -> dict[str, Any]:
    """A continuation token back into the DynamoDB key it encodes: {name: {"S"|"N"|"B": text}}, one or
    two attributes within DynamoDB's key limits. Anything else is forged or damaged: a bad argument
    (a key of another shape would otherwise fail inside the client's serialiser)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode("utf-8")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        key = None
    if not isinstance(key, dict) or not 0 < len(key) <= 2 or not all(_key_value(v) for v in key.values()):
        raise InvalidQuery(f"invalid continuation token {token[:100]!r}")
    return key


def _key_value(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    [(kind, text)] = value.items()
    return kind in ("S", "N", "B") and isinstance(text, str) and len(text.encode("utf-8", "replace")) <= MAX_KEY_BYTES


# ----------------------------------------------------------------------------- arguments

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:[0-9]+[smhdw])+")  # ASCII digits: \d would take any script's digits
MAX_DURATION = timedelta(days=36525)  # a century: any "how far back" past it is a typo, and overflows dates


def parse_duration(text: str) -> timedelta:
    """30m, 2h, 1d, 1h30m (s, m, h, d, w): how far back a question looks (e.g. --older-than)."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise InvalidQuery(f"invalid duration {text!r}: use a number and a unit, e.g. 30m, 2h, 1d")
    parts = re.findall(r"([0-9]+)([smhdw])", value)
    limit = int(MAX_DURATION.total_seconds())
    # Digits past a dozen are far beyond the limit (and int() refuses thousands of them): no arithmetic.
    if any(len(n.lstrip("0")) > 12 for n, _ in parts) or sum(
            int(n) * _DURATION_UNITS[unit] for n, unit in parts) > limit:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidQuery(f"duration {shown!r} is too long: at most {MAX_DURATION.days}d")
    return timedelta(seconds=sum(int(n) * _DURATION_UNITS[unit] for n, unit in parts))


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


def moment(text: str) -> str:
    """An ISO 8601 time (naive = UTC) or `now`, in the stored time form (a command-line argument)."""
    if text.strip().lower() == "now":
        return time_bound(datetime.now(timezone.utc))
    try:
        return time_bound(text)
    except InvalidQuery:
        raise InvalidQuery(f"invalid time {text!r}: use ISO 8601, e.g. 2024-05-01T12:00:00Z, or `now`") from None


def choice(choices: Sequence[str], what: str, normalise: Callable[[str], str] = str) -> Callable[[str], str]:
    """A parser accepting one of ``choices`` (after ``normalise``)."""
    def parse(text: str) -> str:
        value = normalise(text.strip())
        if value not in choices:
            raise InvalidQuery(f"unknown {what} {text!r} (one of {', '.join(choices)})")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidQuery(f"expected a whole number >= 1, got {text!r}")
    return value


def flag(params: Mapping[str, str], name: str) -> bool | None:
    """An optional true/false query parameter."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidQuery(f"query parameter {name!r} must be true or false, not {value!r}")


_LIMIT = re.compile(r"[0-9]{1,4}")


def page_limit(params: Mapping[str, str], default: int = 100, most: int = 1000) -> int:
    text = params.get("limit", str(default))
    if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= most:  # not str.isdigit(): '²' is a digit to it
        raise InvalidQuery(f"query parameter 'limit' must be 1-{most}, not {text!r}")
    return int(text)


def rows(found: Sequence[ViewRow]) -> list[dict[str, Any]]:
    return [row.to_dict() for row in found]


# ----------------------------------------------------------------------------- how the shell asks

@dataclass(frozen=True)
class Arg:
    """One argument of a command: argparse's flags and keywords (``type`` may raise InvalidQuery)."""

    flags: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None  # arguments of one group exclude each other


@dataclass(frozen=True)
class Answer:
    """A command's answer: a list of rows, or one row (``single``) that may be None."""

    found: Sequence[ViewRow] | ViewRow | None
    single: bool = False
    footer: str = ""  # printed under the table (not in --json)


@dataclass(frozen=True)
class Command:
    """`dynafold query <name> ...`: ``run(queries, args, now)`` with the parsed arguments by dest.

    ``name`` is the view's name, or one of its table families' (the names `dynafold rebuild` and
    `dynafold views` take); ``aliases`` are older spellings that keep working."""

    name: str
    help: str
    run: Callable[[Any, Mapping[str, Any], datetime], Answer]
    columns: tuple[str, ...]
    args: tuple[Arg, ...] = ()
    cells: Callable[[Any], Mapping[str, Any]] | None = None  # a row's table cells (default: to_dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """A GET route over the view: ``answer(queries, path_params, query_params, now)`` is the JSON body.

    It raises InvalidQuery for a 400 and NotFound for a 404.
    """

    template: str
    answer: Callable[[Any, Mapping[str, str], Mapping[str, str], datetime], Any]


@dataclass(frozen=True)
class Section:
    """A section of the views report (`dynafold query all`, the demo's ending): rows as JSON-able dicts."""

    key: str
    title: str
    columns: tuple[str, ...]
    collect: Callable[[Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class ViewUnit:
    """One view: its fold (with its table family and stream category), its row type, its questions."""

    view: View[Any]
    row: type[ViewRow]
    queries: Callable[[Reader], Any]  # the view's questions over a reader
    commands: tuple[Command, ...] = ()
    routes: tuple[Route, ...] = ()
    report: tuple[Section, ...] = ()

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def attr(self) -> str:
        """The view's name as an attribute: ``ViewQueries(...).pending_errors``."""
        return self.view.name.replace("-", "_")
