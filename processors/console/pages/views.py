"""Views: every view in the registry (filterable, sortable), a view's rows a page at a time, and a
row's detail with its provenance: the events of the stream that owns it, up to the version the
row reflects, each a link.

A view's rows are read a bounded Scan page at a time (as `GET /inventory` does): the filter looks
at no more than ``MAX_EXAMINED`` stored items per page, and sorting orders the page shown.
"""

from __future__ import annotations

import json
from typing import Any

from events.errors import NotFound
from processors.console.context import Context
from processors.console.web import Page, PageError
from projections.registry import UNITS, UNITS_BY_NAME
from projections.unit import ViewUnit, decode_token, encode_token, page_limit
from projections.view import HEAD_SORT_KEY

ROWS_PAGE = 50
MAX_EXAMINED = 1000
PROVENANCE_LIMIT = 200
_SORTS = ("name", "category", "table", "active")


def registry(ctx: Context) -> Page:
    needle = ctx.query.get("q", "").strip().lower()
    sort, descending = _sort(ctx, _SORTS, "name")
    rows = [{"name": unit.name, "category": unit.view.category, "table": unit.view.table,
             "active": ctx.deps.views.get(unit.view.table, ""), "key_attrs": _keys(unit),
             "extra_tables": list(unit.view.extra_tables), "fields": _fields(unit)} for unit in UNITS]
    if needle:
        rows = [row for row in rows if any(needle in str(row[name]).lower() for name in _SORTS)]
    rows.sort(key=lambda row: str(row[sort]), reverse=descending)
    return ctx.page("views.html", section="views", title="Views", views=rows, q=needle, sort=sort,
                    descending=descending, sorts=_SORTS)


def rows(ctx: Context) -> Page:
    unit = _unit(ctx)
    columns = _keys(unit) + [name for name in _fields(unit) if name not in _keys(unit)]
    needle = ctx.query.get("contains", "").strip().lower()
    limit = page_limit(ctx.query, ROWS_PAGE, 500)
    start = decode_token(ctx.query["next"]) if ctx.query.get("next") else None
    shown: list[dict[str, Any]] = []
    examined = 0
    while len(shown) < limit and examined < MAX_EXAMINED:
        page, last = ctx.deps.reader.scan(unit.view.table, min(limit, MAX_EXAMINED - examined), start)
        examined += len(page)
        for row in page:
            if unit.view.sort_attr is not None and row.get(unit.view.sort_attr) == HEAD_SORT_KEY:
                continue  # a multi-row view's head: bookkeeping, not a row
            cells = {name: _cell(row.get(name)) for name in columns}
            if needle and not any(needle in text.lower() for text in cells.values()):
                continue
            shown.append({"cells": cells, "link": _row_link(unit, row)})
        start = last
        if last is None:
            break
    sort, descending = _sort(ctx, tuple(columns), "")
    if sort:
        shown.sort(key=lambda row: row["cells"][sort], reverse=descending)
    return ctx.page("view_rows.html", section="views", title=f"View {unit.name}", unit=unit.name, columns=columns,
                    rows=shown, contains=needle, sort=sort, descending=descending, limit=limit,
                    next_token=encode_token(start) if start else None, examined=examined)


def row(ctx: Context) -> Page:
    unit = _unit(ctx)
    key = {unit.view.key_attr: ctx.params["key"]}
    if unit.view.sort_attr is not None:
        sort_key = ctx.query.get("sort_key", "")
        if not sort_key or sort_key == HEAD_SORT_KEY:
            raise PageError(400, f"view {unit.name} needs sort_key ({unit.view.sort_attr}) to name one row")
        key[unit.view.sort_attr] = sort_key
    found = ctx.deps.reader.get(unit.view.table, key)
    if found is None:
        raise NotFound(f"row {json.dumps(key, ensure_ascii=False)} of view {unit.name}")
    stamp = unit.row.from_row(found)
    stream, version = stamp.stream_id, stamp.stream_version or 0
    events = []
    if stream and version:
        events = list(reversed(ctx.deps.store.read_stream(stream, max(1, version - PROVENANCE_LIMIT + 1), version)))
    cells = [(name, _cell(value)) for name, value in sorted(found.items())]
    return ctx.page("row.html", section="views", title=f"{unit.name} row", unit=unit.name, key=key, cells=cells,
                    stream=stream, version=version, events=events, cut=version > PROVENANCE_LIMIT)


def _unit(ctx: Context) -> ViewUnit:
    unit = UNITS_BY_NAME.get(ctx.params["name"])
    if unit is None:
        raise NotFound(f"view {ctx.params['name']!r}")
    return unit


def _keys(unit: ViewUnit) -> list[str]:
    return [unit.view.key_attr] + ([unit.view.sort_attr] if unit.view.sort_attr else [])


def _fields(unit: ViewUnit) -> list[str]:
    return [name for name in unit.row.__dataclass_fields__ if name not in ("extra",)]


def _row_link(unit: ViewUnit, row: dict[str, Any]) -> dict[str, str]:
    link = {"key": str(row.get(unit.view.key_attr, ""))}
    if unit.view.sort_attr is not None:
        link["sort_key"] = str(row.get(unit.view.sort_attr, ""))
    return link


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def _sort(ctx: Context, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    sort = ctx.query.get("sort", default)
    if sort and sort not in allowed:
        raise PageError(400, f"cannot sort by {sort[:60]!r} (one of {', '.join(allowed)})")
    direction = ctx.query.get("dir", "asc")
    if direction not in ("asc", "desc"):
        raise PageError(400, f"dir must be asc or desc, not {direction[:20]!r}")
    return sort, direction == "desc"
