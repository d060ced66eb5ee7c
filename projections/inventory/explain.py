""""Why does Shopify show 3 when we have 5?" (issue 19 §A3), answered from a SKU's history. Pure.

The SKU's events are folded one by one with the inventory view's own fold, noting on the way what
a support engineer needs and the row alone does not keep: which level updates were our pushes
coming back (echoes, ignored), which were drift (and what became of it), how each push ended.
The answer is an ``Explanation``: the short answer, then our count, each Shopify item (its level
per location as Shopify last reported it, what it should show, our last push to it), echoes and
drift, in sentences; the same facts for scripts; the events it was read from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from events.envelope import RecordedEvent, format_time
from events.errors import NotFound
from events.inventory import (
    BufferSet,
    PhysicalCountSet,
    ReturnRecorded,
    ShopifyCountAdopted,
    ShopifyItemLinked,
    ShopifyLevelReported,
    ShopifyPushPlanned,
    ShopifyPushSettled,
    StockAdjusted,
)
from projections.explanation import Explanation, Section
from projections.inventory.fold import (
    InventoryItem,
    LastPush,
    ListedItem,
    LocationLevel,
    apply,
    explained_drifts,
    initial,
)
from projections.reactor.rules.shopify_sync import is_echo
from projections.reactor.settings import ShopifySyncSettings

QUESTION = "Why does Shopify show what it shows for this SKU?"
SHOWN_AT_MOST = 5  # echoes and drifts told one by one; older ones are counted


D = TypeVar("D")


@dataclass(frozen=True)
class _Seen(Generic[D]):
    """An event of the history, with its data as the type it was noted for."""

    id: str
    time: str
    data: D

    @classmethod
    def of(cls, event: RecordedEvent, data: D) -> "_Seen[D]":
        return cls(event.id, format_time(event.time), data)


@dataclass(frozen=True)
class _Drift:
    level: _Seen[ShopifyLevelReported]  # the level that showed it
    push: _Seen[ShopifyPushPlanned]  # the corrective push
    shown: int | None
    expected: int | None


@dataclass
class _Story:
    """What the fold alone forgets, noted while folding the SKU's history."""

    counted_by: _Seen[PhysicalCountSet | ShopifyCountAdopted] | None = None
    changes_since_count: int = 0
    echoes: list[tuple[_Seen[ShopifyLevelReported], str | None]] = field(default_factory=list)  # (level, push id)
    drifts: list[_Drift] = field(default_factory=list)
    last_level: dict[str, str] = field(default_factory=dict)  # item -> its latest level event's id
    pushes: dict[str, _Seen[ShopifyPushPlanned]] = field(default_factory=dict)  # push id -> planned
    settled: dict[str, _Seen[ShopifyPushSettled]] = field(default_factory=dict)
    explained: set[str] = field(default_factory=set)  # drifts (their level's id) a late sale explained
    causes: dict[str, str] = field(default_factory=dict)  # event id -> what it was, for the pushes answering it


def _read(sku: str, history: Sequence[RecordedEvent], window: ShopifySyncSettings) -> tuple[InventoryItem, _Story]:
    story, state = _Story(), initial(sku)
    levels: dict[str, _Seen[ShopifyLevelReported]] = {}  # level event id -> level: what a drift push answered
    for event in history:
        before, state = state, apply(state, event)
        data = event.data
        if isinstance(data, (PhysicalCountSet, ShopifyCountAdopted)):
            story.counted_by, story.changes_since_count = _Seen.of(event, data), 0
        elif isinstance(data, (StockAdjusted, ReturnRecorded)):
            story.changes_since_count += 1
        elif isinstance(data, ShopifyLevelReported):
            item = state.item(data.inventory_item_id)
            if item is not None:
                levels[event.id] = _Seen.of(event, data)
                story.last_level[data.inventory_item_id] = event.id
                if data.counted and is_echo(item, data, window):
                    story.echoes.append((levels[event.id], item.last_push.push_id if item.last_push else None))
        elif isinstance(data, ShopifyPushPlanned):
            story.pushes[data.push_id] = planned = _Seen.of(event, data)
            listed = before.item(data.inventory_item_id)
            level = levels.get(event.causation_id or "")
            if data.drift is not None and level is not None and listed is not None:
                story.drifts.append(_Drift(level, planned, listed.available, listed.expected))
        elif isinstance(data, ShopifyPushSettled):
            story.settled[data.push_id] = _Seen.of(event, data)
        story.explained.update(explained_drifts(before, state))
        story.causes[event.id] = _what(data, event)
    return state, story


def explain_sku(sku: str, history: Sequence[RecordedEvent], settings: ShopifySyncSettings | None) -> Explanation:
    """The answer for ``sku`` from its stream's events, in order (NotFound when it has none).
    ``settings`` are the sync's (push location, echo window); None where pushes are not configured."""
    if not history:
        raise NotFound(f"SKU {sku!r}")
    window = settings or ShopifySyncSettings(push_location="")
    state, story = _read(sku, history, window)
    sections = [_count_section(state, story),
                *(_item_section(item, story, settings) for item in state.shopify_items),
                _echo_section(story, window.echo_window), _drift_section(story)]
    return Explanation(
        question=QUESTION, subject=f"sku:{sku}", answer=_answer(state, story, settings),
        sections=tuple(sections), facts=_facts(state, story, settings), event_ids=_provenance(story))


def _what(data: object, event: RecordedEvent) -> str:
    """An event as a push's cause, in words."""
    if isinstance(data, PhysicalCountSet):
        return f"the count of {data.physical}"
    if isinstance(data, ShopifyCountAdopted):
        return f"the adoption of Shopify's {data.physical}"
    if isinstance(data, StockAdjusted):
        return f"order {data.order_id}" if data.reason == "order" and data.order_id else f"a change of {data.delta:+d}"
    if isinstance(data, ReturnRecorded):
        return f"a return of {data.quantity}"
    if isinstance(data, BufferSet):
        return f"the buffer set to {data.buffer}"
    if isinstance(data, ShopifyLevelReported):
        return f"Shopify's level {data.available} of item {data.inventory_item_id} at {data.updated_at}"
    if isinstance(data, ShopifyItemLinked):
        return f"item {data.inventory_item_id} mapped to the SKU"
    return event.type


# ----------------------------------------------------------------------------- the short answer

def _answer(state: InventoryItem, story: _Story, settings: ShopifySyncSettings | None) -> str:
    sku, ours = state.sku, f"we have {state.available} available"
    items = state.shopify_items
    if not items:
        return f"No Shopify item is mapped to {sku}, so dynafold sets nothing in Shopify ({ours})."
    shows = ", ".join(f"{_shows(item)} on item {item.inventory_item_id}" for item in items)
    if state.uncounted:
        return (f"Shopify shows {shows}, and {sku} was never counted here, so dynafold pushes nothing to Shopify "
                f"for it: count it, or adopt Shopify's level (`dynafold shopify adopt --sku {sku}`).")
    off = [item for item in items if not _as_it_should(state, item, settings)]
    if not off:
        return f"Shopify shows {shows} for {sku}, as it should: {ours} ({_pool(state)})."
    item = off[0]
    return (f"Shopify shows {_shows(item)} for {sku} on item {item.inventory_item_id}, where {ours} "
            f"({_pool(state)}): {_why_off(state, item, story, settings)}")


def _shows(item: ListedItem) -> str:
    return "nothing yet" if item.available is None else str(item.available)


def _pool(state: InventoryItem) -> str:
    return f"physical {state.physical} - buffer {state.buffer}"


def _as_it_should(state: InventoryItem, item: ListedItem, settings: ShopifySyncSettings | None) -> bool:
    """It shows what a push would make it show: our available count, or (when the item's other
    counted locations hold more than we have) the push location at 0 and what those hold."""
    if item.available is None:
        return False
    location = settings.push_location if settings else item.last_push.location_id if item.last_push else None
    others = sum(level.available for level in item.levels
                 if level.counted and level.available is not None and level.location_id != location)
    return item.available == max(0, state.available - others) + others if location else (
        item.available == state.available)


def _why_off(state: InventoryItem, item: ListedItem, story: _Story, settings: ShopifySyncSettings | None) -> str:
    push = item.last_push
    if settings is not None and item.level_at(settings.push_location) is None:
        return (f"Shopify never reported its level at the push location {settings.push_location}, so there is "
                "nothing to compare-and-set against: nothing is pushed to it until it does.")
    if push is None:
        return ("no push was ever planned for it" + ("" if settings else
                " (pushes need DYNAFOLD_SHOPIFY_PUSH_LOCATION, which is not set here)") + ".")
    if push.outcome is None:
        return f"our push {push.push_id} setting it to {push.quantity} (planned at {push.time}) has not settled yet."
    if push.outcome == "failed":
        return f"our last push {push.push_id} failed ({push.detail or 'no detail'}); a sync_failed alert says so."
    if item.expected is not None and item.available != item.expected:
        return (f"it should show {item.expected} after our last push, so the level Shopify reported last is "
                "drift; a corrective push follows it (see Drift).")
    return (f"our count changed after our last push set it to {push.total}, and no push followed"
            + ("" if settings else " (pushes need DYNAFOLD_SHOPIFY_PUSH_LOCATION, which is not set here)") + ".")


# ----------------------------------------------------------------------------- sections

def _count_section(state: InventoryItem, story: _Story) -> Section:
    counted = story.counted_by
    if counted is None:
        first = "Never counted here (no stock take, count or adoption): nothing is pushed to Shopify for it."
    elif isinstance(counted.data, ShopifyCountAdopted):
        first = (f"Counted here at {counted.time} by adopting Shopify's level of item "
                 f"{counted.data.from_item} ({counted.data.physical}), by {counted.data.adopted_by}.")
    else:
        first = f"Counted here at {counted.time}: physical set to {counted.data.physical}."
    since = (f" Since then {story.changes_since_count} order(s) and return(s) changed it."
             if counted is not None and story.changes_since_count else "")
    pool = (f"Physical {state.physical}, buffer {state.buffer} held back: {state.available} available to sell "
            "(physical - buffer, never below 0).")
    return Section("Our count", (first + since, pool))


def _item_section(item: ListedItem, story: _Story, settings: ShopifySyncSettings | None) -> Section:
    title = f"Shopify item {item.inventory_item_id}" + (f" (variant {item.variant_id})" if item.variant_id else "")
    sentences = [_level_sentence(level, item, settings) for level in item.levels] or [
        "Shopify has reported no level of it yet."]
    if item.available is not None:
        sentences.append(f"Over the counted locations it shows {item.available}.")
    push = item.last_push
    if push is None:
        sentences.append("No push to it yet, so nothing says what it should show.")
    else:
        own = item.applied - push.applied
        sentences.append(f"After our last push it should show {item.expected}: the push's total {push.total}"
                         + (f", then {own:+d} by Shopify's own sales and restocks on it." if own else
                            ", with no sale or restock of Shopify's own on it since."))
        sentences.append(_push_sentence(push, story))
    return Section(title, tuple(sentences))


def _level_sentence(level: LocationLevel, item: ListedItem, settings: ShopifySyncSettings | None) -> str:
    where = f"At location {level.location_id}" + (" (the push location)" if settings and
                                                  level.location_id == settings.push_location else "")
    where += "" if level.counted else " (not a counted location)"
    value = "not tracked" if level.available is None else str(level.available)
    if level.ours and item.last_push is not None:
        return (f"{where}: {value}, as our push {item.last_push.push_id} set it (settled at {level.updated_at}, "
                "to the second); Shopify has reported nothing newer.")
    return f"{where}: {value}, as Shopify last reported it, at {level.updated_at} (Shopify's time)."


_OUTCOMES = {"applied": "applied: Shopify holds {q} there", "already_applied": "Shopify already held {q} there",
             "failed": "failed: {detail}; a sync_failed alert says so"}


def _push_sentence(push: LastPush, story: _Story) -> str:
    planned = story.pushes.get(push.push_id)
    cause = f", answering {story.causes.get(push.cause_id, 'event ' + push.cause_id)}" if push.cause_id else ""
    done = ("it has not settled yet" if push.outcome is None else
            _OUTCOMES.get(push.outcome, push.outcome).format(q=push.quantity, detail=push.detail or "no detail")
            + f" (settled at {push.settled_at})")
    when = planned.time if planned is not None else push.time
    compare = "" if push.compare_quantity is None else f" (compare-and-set against {push.compare_quantity})"
    return (f"Last push {push.push_id} at {when}: set location {push.location_id} to {push.quantity}{compare} so it "
            f"shows {push.total}{cause}; {done}.")


def _echo_section(story: _Story, window: timedelta) -> Section:
    if not story.echoes:
        return Section("Echoes of our pushes", ("No level update was our own push coming back.",))
    minutes = int(window.total_seconds() // 60)
    told = [f"Item {level.data.inventory_item_id} at location {level.data.location_id}: {level.data.available} "
            f"at {level.data.updated_at}, the echo of push {push_id}."
            for level, push_id in story.echoes[-SHOWN_AT_MOST:]]
    return Section("Echoes of our pushes", (
        f"{len(story.echoes)} level update(s) were our own pushes coming back (same item, location and value, "
        f"within {minutes} minutes of the push): ignored, never drift, no alert.", *told))


def _drift_section(story: _Story) -> Section:
    if not story.drifts:
        return Section("Drift", ("No drift: no level Shopify reported differed from what it should have shown.",))
    told = []
    for drift in story.drifts[-SHOWN_AT_MOST:]:
        push = drift.push.data
        settled = story.settled.get(push.push_id)
        outcome = "not settled yet" if settled is None else settled.data.outcome.replace("_", " ")
        told.append(
            f"At {drift.level.data.updated_at} Shopify's item {push.inventory_item_id} showed {drift.shown} where it "
            f"should have shown {drift.expected} (drift {push.drift:+d}): a sync_drift alert, and push {push.push_id} "
            f"set location {push.location_id} to {push.quantity} so it shows {push.total} ({outcome})."
            + (" A sale Shopify made before that level, reported after it, explained all of it later: the alert "
               "was marked read." if drift.level.id in story.explained else ""))
    more = len(story.drifts) - len(told)
    return Section("Drift", (*told, *([f"{more} earlier drift(s) not told here."] if more > 0 else [])))


# ----------------------------------------------------------------------------- facts and provenance

def _facts(state: InventoryItem, story: _Story, settings: ShopifySyncSettings | None) -> dict[str, Any]:
    items = state.to_dict()["shopify_items"]
    return {
        "sku": state.sku, "physical": state.physical, "buffer": state.buffer, "available": state.available,
        "counted": state.counted, "push_location": settings.push_location if settings else None,
        "items": items,
        "echoes_ignored": len(story.echoes),
        "drifts": [{"item": d.push.data.inventory_item_id, "level_event_id": d.level.id, "shown": d.shown,
                    "expected": d.expected, "drift": d.push.data.drift, "push_id": d.push.data.push_id,
                    "explained": d.level.id in story.explained,
                    "outcome": (story.settled[d.push.data.push_id].data.outcome
                                if d.push.data.push_id in story.settled else None)}
                   for d in story.drifts],
    }


def _provenance(story: _Story) -> tuple[str, ...]:
    ids = [story.counted_by.id] if story.counted_by else []
    ids += list(story.last_level.values())
    for push_id in list(story.pushes)[-SHOWN_AT_MOST:]:
        ids.append(story.pushes[push_id].id)
        if push_id in story.settled:
            ids.append(story.settled[push_id].id)
    ids += [level.id for level, _ in story.echoes[-SHOWN_AT_MOST:]]
    ids += [id_ for drift in story.drifts[-SHOWN_AT_MOST:] for id_ in (drift.level.id, drift.push.id)]
    return tuple(dict.fromkeys(ids))
