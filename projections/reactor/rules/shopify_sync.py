"""Shopify sync (seed 004, issue 11 §4-5, issue 18 §1-2): the pure decisions of what Shopify should show and
when to push.

Our physical count is the truth, and nothing is pushed for a SKU never counted here (``uncounted``:
pushing our 0 would zero a listing at onboarding; ``dynafold shopify adopt`` takes Shopify's level
as the first count instead). A SKU is one stock pool: every Shopify inventory item mapped to it
(Shopify does not enforce unique SKUs) is pushed to the SKU's available count, and each is judged
on its own. After a push an item should show the push's total plus the changes Shopify applied to
it itself since (orders, restocking refunds): ``ListedItem.expected``.

- A level update (``inventory_levels/update``) that only echoes our own push -- same inventory
  item, same location, the pushed value, Shopify's time close to the push's -- is no drift and
  raises nothing: Shopify carries no id of ours, so the echo is recognised by value, item,
  location and time. (If an order we counted since makes Shopify's expected level differ, it is
  reconciled by a compare-and-set push without an alert.)
- Otherwise the level the item shows (summed over the counted locations) is compared with what it
  should show: equal -> no change; different -> a ``sync_drift`` alert and a corrective push of
  our available count to that item. Levels never change the physical count, so nothing is counted twice.
- Any other change of our available count (stock take, buffer, a change Shopify did not apply
  itself, a sale on another listing of the SKU) that leaves an item expected to show something
  else is pushed to it, without an alert.
- A change Shopify applied itself (order, restocking refund) that the item's last level does not
  reflect, made around or before our last push to it (our set may have overwritten it), is
  re-pushed without an alert (``_overwritten``).

A push sets the push location's ``available`` of one item so that its counted total equals ours
(the other counted locations keep what Shopify reports for them), compare-and-set against the
level we last saw there. The push id derives from the cause event (and the item, when the SKU has
several), so a re-run reactor plans the same push and its idempotency key makes it land once; the
executor (processors/services/shopify_push.py) acts once per push id.

Nothing is pushed to an item before Shopify has reported its level at the push location: only a
level names the value to compare against.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from events.alerts import AlertRaised, AlertRead
from events.envelope import NewEvent, PlannedAppend, RecordedEvent, parse_time
from events.inventory import (
    ReturnRecorded,
    ShopifyLevelReported,
    ShopifyPushPlanned,
    ShopifyPushSettled,
    StockAdjusted,
)
from projections.reactor.rules.alerts import alert_id
from projections.inventory import InventoryItem, InventoryProjection, ListedItem
from projections.inventory.fold import attribution, explained_drifts
from projections.reactor.reaction import Append, Count, Effect, RaiseAlert, Reaction, Rule
from projections.reactor.settings import ShopifySyncSettings

SOURCE = "urn:dynafold:reactor"
PUSH_TYPE = "dynafold.inventory.shopify_push.v1"
_PUSH_NAMESPACE = uuid.UUID("8d3f2a61-4b7c-4e2d-9f10-6a5b4c3d2e1f")
# Shopify's clock and ours differ a little; an echo's updated_at is Shopify's time of our mutation.
ECHO_CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class SyncDecision:
    """What to do about a SKU now: pushes (one per item that needs one; a push caused by drift
    carries it), or nothing."""

    pushes: tuple[ShopifyPushPlanned, ...] = ()
    echo: bool = False

    @property
    def drift(self) -> int | None:
        return next((push.drift for push in self.pushes if push.drift is not None), None)


def push_id_for(cause_event_id: str, inventory_item_id: str | None = None) -> str:
    """One push per cause and item. The only listing of a SKU keeps the id its cause alone gives
    (as before shared SKUs), so a reactor re-run across that upgrade plans the same push."""
    name = cause_event_id if inventory_item_id is None else f"{cause_event_id}:{inventory_item_id}"
    return "push-" + str(uuid.uuid5(_PUSH_NAMESPACE, name))


def push_key(push_id: str) -> str:
    return f"shopify-push:{push_id}"


def is_echo(item: ListedItem, level: ShopifyLevelReported, settings: ShopifySyncSettings) -> bool:
    """The level Shopify reports after, and because of, our last push to the item: same item and
    location, the value we set, Shopify's time within the echo window of the push's time."""
    push = item.last_push
    if push is None or level.available != push.quantity:
        return False
    if (level.inventory_item_id, level.location_id) != (push.inventory_item_id, push.location_id):
        return False
    pushed_at, level_at = parse_time(push.time), parse_time(level.updated_at)
    return pushed_at - ECHO_CLOCK_SKEW <= level_at <= pushed_at + settings.echo_window


def _push(state: InventoryItem, item: ListedItem, settings: ShopifySyncSettings, cause_id: str,
          drift: int | None, drift_at: str | None = None) -> ShopifyPushPlanned | None:
    here = item.level_at(settings.push_location)
    if here is None or here.available is None:
        return None  # no level there yet (or Shopify does not track the item there): nothing to compare with
    others = sum(level.available for level in item.levels
                 if level.counted and level.available is not None and level.location_id != settings.push_location)
    quantity = max(0, state.available - others)
    shared = item.inventory_item_id if len(state.shopify_items) > 1 else None
    return ShopifyPushPlanned(sku=state.sku, push_id=push_id_for(cause_id, shared),
                              inventory_item_id=item.inventory_item_id, location_id=settings.push_location,
                              quantity=quantity, compare_quantity=here.available, total=quantity + others,
                              drift=drift, drift_at=drift_at)


def decide(cause: RecordedEvent, after: InventoryItem, settings: ShopifySyncSettings) -> SyncDecision:
    """What ``cause`` (already folded into ``after``) asks of Shopify. Pure."""
    data = cause.data
    if isinstance(data, (ShopifyPushPlanned, ShopifyPushSettled)):
        return SyncDecision()  # our own pushes never cause pushes
    if not after.counted:
        return SyncDecision()  # never counted here: our 0 is no count (issue 18 §1)
    if isinstance(data, ShopifyLevelReported):
        item = after.item(data.inventory_item_id)
        if item is None or not data.counted:
            return SyncDecision()
        return _level_reported(cause, data, after, item, settings)
    moved = attribution(after, data) if isinstance(data, (StockAdjusted, ReturnRecorded)) else {}
    pushes = []
    for item in after.shopify_items:
        if item.inventory_item_id in moved and _overwritten(data, item):  # pushed as an echo is, for the same reason
            push = _push(after, item, settings, cause.id, None)
        else:
            target = item.expected if item.expected is not None else item.available
            push = None if target is None else _changing(_push(after, item, settings, cause.id, None), target)
        if push is not None:
            pushes.append(push)
    return SyncDecision(tuple(pushes))


def _level_reported(cause: RecordedEvent, data: ShopifyLevelReported, after: InventoryItem, item: ListedItem,
                    settings: ShopifySyncSettings) -> SyncDecision:
    shown, expected = item.available, item.expected
    if is_echo(item, data, settings):
        # Our own push coming back: never drift, never an alert. Still reconciled (no alert)
        # when the item should now show something else -- an order we counted after the push
        # that Shopify had applied before our set overwrote it -- so that case converges too;
        # when Shopify applied the sale after our set, compare-and-set finds it done.
        # (Pushed even when it sets what Shopify already shows: the push re-anchors what the item
        # should show, which would otherwise stay off and turn later levels into false drift.)
        reconcile = expected is not None and shown is not None and shown != expected
        push = _push(after, item, settings, cause.id, None) if reconcile else None
        return SyncDecision(() if push is None else (push,), echo=True)
    if shown is None:
        return SyncDecision()
    if expected is not None and shown != expected:
        push = _push(after, item, settings, cause.id, drift=shown - expected, drift_at=data.updated_at)
    else:
        push = _changing(_push(after, item, settings, cause.id, None), shown)
    return SyncDecision(() if push is None else (push,))


def _changing(push: ShopifyPushPlanned | None, shows: int | None) -> ShopifyPushPlanned | None:
    """The push, unless the item already shows (or should show) what it would make it show.
    Compared with the push's total, not our available count: when the other counted locations
    hold more than we have, the push location goes to 0 and the total stays above it -- pushing
    again would never end."""
    return push if push is not None and push.total != shows else None


def _overwritten(data: object, item: ListedItem) -> bool:
    """A change Shopify applied itself to this item (a sale, a restock) arrives while the item
    shows something else than it should. Normally its own level update is on its way and will
    match. But when the change happened before (or around) our last push, our compare-and-set may
    have overwritten it and no level update will come: push (compare-and-set, so if Shopify did
    apply it after our set, the push finds the value there and does nothing). A change well after
    the push waits for its level update. No alert either way: this is not a change made behind our back."""
    if not isinstance(data, (StockAdjusted, ReturnRecorded)):
        return False
    shown, expected, push = item.available, item.expected, item.last_push
    if shown is None or expected is None or shown == expected or push is None:
        return False
    if data.occurred_at is None:
        return True
    return parse_time(data.occurred_at) <= parse_time(push.time) + ECHO_CLOCK_SKEW


def _sync(reaction: Reaction) -> list[Effect]:
    settings = reaction.shopify
    if settings is None:
        return []
    decision = decide(reaction.event, reaction.after, settings)
    effects: list[Effect] = [Count("ShopifyEchoesIgnored")] if decision.echo else []
    effects.extend(_close_explained_drift(reaction))
    event = reaction.event
    for push in decision.pushes:
        planned = NewEvent(PUSH_TYPE, push, source=SOURCE, correlation_id=event.correlation_id, causation_id=event.id)
        effects.append(Append(PlannedAppend(event.stream, (planned,), push_key(push.push_id)), "ShopifyPushes"))
        item = reaction.after.item(push.inventory_item_id)
        if push.drift is not None and item is not None:
            effects.append(RaiseAlert(AlertRaised(
                alert_id=alert_id("sync_drift", event.id), alert_type="sync_drift", severity="warning",
                subject=event.stream, sku=push.sku, cause_event_id=event.id,
                message=(f"{push.sku}: Shopify item {push.inventory_item_id} shows {item.available} "
                         f"but should show {item.expected} (drift {push.drift:+d}); "
                         f"setting location {push.location_id} to {push.quantity} so it shows {push.total}"))))
    return effects


def _close_explained_drift(reaction: Reaction) -> list[Effect]:
    """A level that overtook the webhook of a sale (or refund) Shopify made before it looks like
    drift: it is corrected at once (compare-and-set) and alerted. When the overtaken webhooks arrive
    and explain all of it, the alert is marked read, with the reason -- so which drift alerts stay
    unread does not depend on the order Shopify's webhooks arrived in."""
    effects: list[Effect] = []
    for cause_id in explained_drifts(reaction.before, reaction.after):
        closed = alert_id("sync_drift", cause_id)
        read = AlertRead(alert_id=closed, read_by=f"dynafold: explained by Shopify's own change {reaction.event.id}, "
                                                  "reported after the level")
        new = NewEvent("dynafold.alerts.read.v1", read, source=SOURCE, correlation_id=reaction.event.correlation_id,
                       causation_id=reaction.event.id)
        effects.append(Append(PlannedAppend(f"alert:{closed}", (new,), f"drift-explained:{closed}"),
                              "ShopifyDriftsExplained"))
    return effects


RULES: tuple[Rule, ...] = (Rule("shopify_sync", _sync, view=InventoryProjection),)
