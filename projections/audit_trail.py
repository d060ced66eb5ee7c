"""What each event changed: the audit view of a stream. Pure.

For a stream a view folds, an event's change is the difference it made to the view's rows (the
same fold live processing runs), e.g. ``physical: 50 -> 48``. For other streams it is the
difference between the event's data and the previous event's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from events.envelope import RecordedEvent
from projections.view import View, stream_key

_VALUE_WIDTH = 60


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return text if len(text) <= _VALUE_WIDTH else text[:_VALUE_WIDTH - 1] + "…"


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any], label: str = "") -> list[str]:
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes.append(f"{label}{name}: {_show(old)} -> {_show(new)}")
    return changes


def row_changes(view: View[Any], before: Any, after: Any) -> list[str]:
    old_rows, new_rows = view.rows(before), view.rows(after)
    changes: list[str] = []
    for sort_key in sorted(old_rows.keys() | new_rows.keys(), key=lambda k: "" if k is None else str(k)):
        label = "" if sort_key is None else f"[{sort_key}] "
        if sort_key not in old_rows:
            changes.append(f"{label}row added" if label else "row added")
            changes.extend(field_changes({}, {k: v for k, v in new_rows[sort_key].items() if v is not None}, label))
        elif sort_key not in new_rows:
            changes.append(f"{label}row removed")
        else:
            changes.extend(field_changes(old_rows[sort_key], new_rows[sort_key], label))
    seen = len(view.extras(before))
    changes.extend(f"{extra.table}: + {_show(extra.item)}" for extra in view.extras(after)[seen:])
    return changes


def trail(view: View[Any] | None, events: Sequence[RecordedEvent]) -> list[tuple[RecordedEvent, list[str]]]:
    """Every event of one stream (in version order, from version 1) with what it changed."""
    result = []
    if view is None:
        previous: dict[str, Any] = {}
        for event in events:
            data = event.data.model_dump(mode="json")
            result.append((event, field_changes(previous, data)))
            previous = data
        return result
    state = view.initial(stream_key(events[0].stream)) if events else None
    for event in events:
        after = view.apply(state, event)
        result.append((event, row_changes(view, state, after) or ["no change to the view"]))
        state = after
    return result
