"""Issue 11 §4, tested: the inventory view and the Shopify sync decision do not depend on the order
Shopify's webhooks arrive in (pure fold + rule, in memory).

Shopify's side is simulated: after our push it holds N at the push location; then a sequence of
its own changes -- orders (it sells), refunds (restocking or not) and a merchant's manual edits --
each followed by the ``inventory_levels/update`` Shopify sends, timed in Shopify's order. We get
every webhook, shuffled. Whatever the order: the same row, physical = N + our deltas (levels never
count), and the same final decision: no drift without a manual edit, exactly the edit's drift with one.
The whole loop also plays a SKU that two Shopify items share (issue 18 §2): every item ends showing
our count.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from events.envelope import RecordedEvent, format_time
from events.inventory import PhysicalCountSet, ReturnRecorded, ShopifyLevelReported, ShopifyPushPlanned, StockAdjusted
from projections.inventory import InventoryItem, InventoryProjection
from projections.reactor.rules.shopify_sync import decide
from projections.reactor.settings import ShopifySyncSettings
from tests.unit.test_folds import recorded

T0 = datetime(2025, 11, 11, 10, tzinfo=timezone.utc)
ITEM, HERE, ELSEWHERE = "808950810", "487838322", "905684977"
SETTINGS = ShopifySyncSettings(push_location=HERE)

change = st.one_of(
    st.tuples(st.just("order"), st.integers(1, 5)),
    st.tuples(st.just("refund"), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("edit"), st.integers(0, 60)),
)


def level(available: int, at: datetime, location: str = HERE, item: str = ITEM) -> ShopifyLevelReported:
    return ShopifyLevelReported(sku="P", inventory_item_id=item, location_id=location, available=available,
                                updated_at=format_time(at), counted=True)


def shopify_history(start: int, changes: list[tuple]) -> tuple[list[BaseModel], int, int | None]:
    """Our webhooks for Shopify's changes (in Shopify's order), our deltas' sum, and Shopify's level
    right after its last manual edit minus what it should have shown then (None: no edit)."""
    shown, expected, ours, drift, webhooks = start, start, 0, None, []
    for index, step in enumerate(changes):
        at = T0 + timedelta(minutes=1, seconds=index)
        if step[0] == "order":
            shown, expected, ours = shown - step[1], expected - step[1], ours - step[1]
            webhooks.append(StockAdjusted(sku="P", delta=-step[1], reason="order", tx_id=f"shopify-order-{index}",
                                          order_id=str(index), applied_by_shopify=True))
        elif step[0] == "refund":
            quantity, restock = step[1], step[2]
            if restock:
                shown, expected = shown + quantity, expected + quantity
            ours += quantity if restock else 0
            webhooks.append(ReturnRecorded(sku="P", quantity=quantity, disposition="SELLABLE" if restock else "DAMAGED",
                                           order_id=str(index), restocked=restock, applied_by_shopify=restock))
        else:
            # A merchant who sets exactly the value we pushed, within the echo window, looks like
            # our echo: Shopify's payload has nothing else to tell them apart (value, item,
            # location, time), so such an edit is not drift we can see.
            shown = step[1] if step[1] != start else step[1] + 61
        drift = (shown - expected) if step[0] == "edit" or drift is not None else None
        webhooks.append(level(shown, at))
    return webhooks, ours, (shown - expected) if drift is not None else None


def fold(webhooks: list[BaseModel], start: int) -> tuple[InventoryItem, list[RecordedEvent]]:
    # Shopify held `start` here and 7 elsewhere; our push set this location to start - 7 (total:
    # our count), and Shopify echoed it.
    before = [PhysicalCountSet(sku="P", physical=start, source="count"), level(start, T0),
              level(7, T0, ELSEWHERE),
              ShopifyPushPlanned(sku="P", push_id="push-0", inventory_item_id=ITEM, location_id=HERE,
                                 quantity=start - 7, compare_quantity=start, total=start),
              level(start - 7, T0 + timedelta(seconds=30))]
    events = [recorded("sku:P", version, data, T0 + timedelta(seconds=version))
              for version, data in enumerate([*before, *webhooks], 1)]
    return InventoryProjection.fold("P", events), events


@settings(max_examples=60, deadline=None)
@given(start=st.integers(10, 40), changes=st.lists(change, max_size=8), data=st.data())
def test_the_view_and_the_decision_converge_under_any_webhook_order(start, changes, data) -> None:
    webhooks, ours, drift = shopify_history(start - 7, changes)  # Shopify's level here after our push
    shuffled = data.draw(st.permutations(webhooks))
    straight, _ = fold(webhooks, start)
    state, events = fold(list(shuffled), start)

    assert state.to_row() == straight.to_row()
    assert state.physical == start + ours  # Shopify's levels never count into the truth
    [item] = state.shopify_items
    assert item.available == item.level_at(HERE).available + 7
    assert item.expected == start + sum(
        (w.delta if isinstance(w, StockAdjusted) else w.quantity if w.applied_by_shopify else 0)
        for w in webhooks if isinstance(w, (StockAdjusted, ReturnRecorded)))
    here = [event for event in events if isinstance(event.data, ShopifyLevelReported)
            and event.data.location_id == HERE]
    newest = max(here, key=lambda event: event.data.updated_at)
    decision = decide(newest, state, SETTINGS)
    if not drift:
        assert decision.drift is None
    else:  # corrected; an alert unless Shopify's last level is the value we pushed (then it reads as our echo)
        assert decision.pushes and (decision.drift == drift or decision.echo)
    for push in decision.pushes:  # the correction makes Shopify show our count over the counted locations
        here_now = item.level_at(HERE)
        assert push.total == max(state.available, 7)
        assert here_now is not None and push.compare_quantity == here_now.available


# ----------------------------------------------------------------------------- the whole loop

SECOND_ITEM = "808950811"  # another variant of the same product with the same SKU (issue 18 §2)


class Loop:
    """Our fold + sync rule + push effect against a model of Shopify, with webhooks in flight.

    Shopify lists the SKU once or twice (two variants sharing it: each item is its own listing of
    our one stock pool) and holds one level per item at the push location (and maybe another
    counted location). Its changes -- sales and restocking refunds on one of the items, manual
    edits, and our compare-and-set pushes -- each queue a level webhook (and a sale or refund its
    own webhook, naming the variant); the test delivers them in any order it likes. Our pushes run
    as the effect does: set with compareQuantity; on a mismatch read the level: done if it is ours,
    else set over it."""

    def __init__(self, start: int, elsewhere: int = 0, items: tuple[str, ...] = (ITEM,)) -> None:
        from events.inventory import ShopifyItemLinked

        self.now = T0
        self.items = items
        self.shopify = {item: start for item in items}
        self.events: list[RecordedEvent] = []
        self.state = InventoryProjection.initial("P")
        self.in_flight: list[BaseModel] = []
        self.drifts = 0
        self.alerts: dict[str, bool] = {}  # sync_drift alert id -> read
        for item in items:
            self.append(ShopifyItemLinked(sku="P", inventory_item_id=item, variant_id=item, source="products"))
        self.append(PhysicalCountSet(sku="P", physical=start, source="count"))
        for item in items:
            if elsewhere:  # another counted location, holding what it holds (no sales there)
                self.append(level(elsewhere, self.tick(), ELSEWHERE, item))
            self.append(level(start, self.tick(), HERE, item))  # Shopify's first level here

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def append(self, data: BaseModel, causation_id: str | None = None) -> None:
        """Append, fold, and carry out the sync rule's effects as the reactor does."""
        from dataclasses import replace as replace_event

        from events.alerts import AlertRead
        from projections.reactor.settings import AlertSettings
        from projections.reactor.reaction import Append, RaiseAlert, Reaction
        from projections.reactor.rules.shopify_sync import RULES

        event = replace_event(recorded("sku:P", len(self.events) + 1, data, self.tick()), causation_id=causation_id)
        self.events.append(event)
        before, self.state = self.state, InventoryProjection.apply(self.state, event)
        for effect in RULES[0].plan(Reaction(event, AlertSettings(), before=before, after=self.state,
                                             shopify=SETTINGS)):
            if isinstance(effect, RaiseAlert):
                self.drifts += 1
                self.alerts[effect.alert.alert_id] = False
            elif isinstance(effect, Append) and isinstance(effect.plan.events[0].data, AlertRead):
                self.alerts[effect.plan.events[0].data.alert_id] = True
            elif isinstance(effect, Append) and isinstance(effect.plan.events[0].data, ShopifyPushPlanned):
                push = effect.plan.events[0].data
                self.append(push, causation_id=event.id)
                self.execute(push)

    @property
    def unread_drift_alerts(self) -> int:
        return sum(not read for read in self.alerts.values())

    def shopify_changes(self, item: str, available: int) -> None:
        self.shopify[item] = available
        self.in_flight.append(level(available, self.tick(), HERE, item))

    def execute(self, push: ShopifyPushPlanned) -> None:
        from events.inventory import ShopifyPushSettled

        item, quantity, compare = push.inventory_item_id, push.quantity, push.compare_quantity
        for attempt in range(1, 4):
            if compare == self.shopify[item]:
                self.shopify_changes(item, quantity)
                self.append(ShopifyPushSettled(sku="P", push_id=push.push_id, outcome="applied", quantity=quantity,
                                               attempts=attempt))
                return
            if self.shopify[item] == quantity:
                self.append(ShopifyPushSettled(sku="P", push_id=push.push_id, outcome="already_applied",
                                               quantity=quantity, attempts=attempt))
                return
            compare = self.shopify[item]  # read the level, set our count over it
        self.append(ShopifyPushSettled(sku="P", push_id=push.push_id, outcome="failed", attempts=3))

    def act(self, action: tuple) -> None:
        kind = action[0]
        item = self.items[action[2] % len(self.items)] if len(action) > 2 else self.items[0]
        if kind == "sale":
            self.shopify_changes(item, self.shopify[item] - action[1])
            self.in_flight.append(StockAdjusted(sku="P", delta=-action[1], reason="order", applied_by_shopify=True,
                                                occurred_at=format_time(self.now), by_variant={item: -action[1]}))
        elif kind == "refund":
            self.shopify_changes(item, self.shopify[item] + action[1])
            self.in_flight.append(ReturnRecorded(sku="P", quantity=action[1], disposition="SELLABLE", restocked=True,
                                                 applied_by_shopify=True, occurred_at=format_time(self.now),
                                                 variant_id=item))
        elif kind == "edit":
            self.shopify_changes(item, action[1])
        elif kind == "count":
            self.append(PhysicalCountSet(sku="P", physical=action[1], source="count"))
        elif kind == "deliver" and self.in_flight:
            self.append(self.in_flight.pop(action[1] % len(self.in_flight)))

    def quiesce(self, pick: list[int]) -> None:
        for round_ in range(200):
            if not self.in_flight:
                return
            self.append(self.in_flight.pop(pick[round_ % len(pick)] % len(self.in_flight) if pick else 0))
        raise AssertionError("dynafold and Shopify keep talking")


on_item = st.integers(0, 1)
action = st.one_of(
    st.tuples(st.just("sale"), st.integers(1, 3), on_item),
    st.tuples(st.just("refund"), st.integers(1, 2), on_item),
    st.tuples(st.just("edit"), st.integers(0, 40), on_item),
    st.tuples(st.just("count"), st.integers(0, 40)),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
)


@settings(max_examples=150, deadline=None)
@given(start=st.integers(5, 30), actions=st.lists(action, max_size=14), pick=st.lists(st.integers(0, 20), max_size=6),
       elsewhere=st.sampled_from([0, 0, 6, 45]), items=st.sampled_from([(ITEM,), (ITEM, SECOND_ITEM)]))
def test_whatever_the_webhook_order_shopify_ends_showing_our_count_counted_once(start, actions, pick,
                                                                               elsewhere, items) -> None:
    loop = Loop(start, elsewhere, items)
    for step in actions:
        loop.act(step)
    loop.quiesce(pick)
    counted = [step for step in actions if step[0] == "count"]
    # Sales and refunds count once each, whenever their webhooks came; a level never counts. (A
    # stock take resets the count: a sale whose webhook arrives after it still counts -- the
    # count is then the merchant's to redo -- so with takes the check is the fold itself.)
    assert loop.state.physical == InventoryProjection.fold("P", loop.events).physical
    if not counted:
        assert loop.state.physical == start + sum(-s[1] if s[0] == "sale" else s[1]
                                                  for s in actions if s[0] in ("sale", "refund"))
    # No merchant edits -> every drift alert raised (a level that overtook its sale's webhook) was
    # closed when the sale's webhook came: the unread alerts do not depend on the webhook order.
    if not any(step[0] == "edit" for step in actions):
        assert loop.unread_drift_alerts == 0
    # Every item shows our count over the counted locations (here: what the other location does not hold)
    for item in items:
        listed = loop.state.item(item)
        assert listed is not None
        assert loop.shopify[item] == max(0, loop.state.available - elsewhere), (item, loop.shopify, loop.state)
        assert listed.available == loop.shopify[item] + elsewhere
        assert listed.expected in (None, loop.shopify[item] + elsewhere)  # None: nothing needed a push
