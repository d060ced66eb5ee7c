"""Shopify sync (seed 004, issue 11 §4-5): the pure decisions of what Shopify should show and when to push.

Our physical count is the truth. After a push Shopify should show the push's total plus the
changes it applied itself since (orders, restocking refunds): ``InventoryItem.shopify_expected``.

- A level update (``inventory_levels/update``) that only echoes our own push -- same inventory
  item, same location, the pushed value, Shopify's time close to the push's -- is no drift and
  raises nothing: Shopify carries no id of ours, so the echo is recognised by value, item,
  location and time. (If an order we counted since makes Shopify's expected level differ, it is
  reconciled by a compare-and-set push without an alert.)
- Otherwise the level Shopify shows (summed over the counted locations) is compared with what it
  should show: equal -> no change; different -> a ``sync_drift`` alert and a corrective push of
  our available count. Levels never change the physical count, so nothing is counted twice.
- Any other change of our available count (stock take, buffer, a change Shopify did not apply
  itself) that leaves Shopify expected to show something else is pushed, without an alert.
- A change Shopify applied itself (order, restocking refund) that Shopify's last level does not
  reflect, made around or before our last push (our set may have overwritten it), is re-pushed
  without an alert (``_overwritten``).

A push sets the push location's ``available`` so that the counted total equals ours (the other
counted locations keep what Shopify reports for them), compare-and-set against the level we last
saw there. The push id derives from the cause event, so a re-run reactor plans the same push and
its idempotency key makes it land once; the executor (processors/services/shopify_push.py) acts
once per push id.

Nothing is pushed before Shopify has reported a level of the SKU at the push location: only a
level names the inventory item and the value to compare against.
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
from projections.inventory import InventoryItem, InventoryProjection
from projections.reactor.reaction import Append, Count, Effect, RaiseAlert, Reaction, Rule
from projections.reactor.settings import ShopifySyncSettings

SOURCE = "urn:dynafold:reactor"
PUSH_TYPE = "dynafold.inventory.shopify_push.v1"
_PUSH_NAMESPACE = uuid.UUID("8d3f2a61-4b7c-4e2d-9f10-6a5b4c3d2e1f")
# Shopify's clock and ours differ a little; an echo's updated_at is Shopify's time of our mutation.
ECHO_CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class SyncDecision:
    """What to do about a SKU now: a push (with the drift that caused it, if any), or nothing."""

    push: ShopifyPushPlanned | None = None
    echo: bool = False

    @property
    def drift(self) -> int | None:
        return self.push.drift if self.push is not None else None


def push_id_for(cause_event_id: str) -> str:
    return "push-" + str(uuid.uuid5(_PUSH_NAMESPACE, cause_event_id))


def push_key(push_id: str) -> str:
    return f"shopify-push:{push_id}"


def is_echo(state: InventoryItem, level: ShopifyLevelReported, settings: ShopifySyncSettings) -> bool:
    """The level Shopify reports after, and because of, our last push: same item and location, the
    value we set, Shopify's time within the echo window of the push's time."""
    push = state.last_push
    if push is None or level.available != push.quantity:
        return False
    if (level.inventory_item_id, level.location_id) != (push.inventory_item_id, push.location_id):
        return False
    pushed_at, level_at = parse_time(push.time), parse_time(level.updated_at)
    return pushed_at - ECHO_CLOCK_SKEW <= level_at <= pushed_at + settings.echo_window


def _push(state: InventoryItem, settings: ShopifySyncSettings, cause_id: str,
          drift: int | None, drift_at: str | None = None) -> ShopifyPushPlanned | None:
    here = state.level_at(settings.push_location)
    if state.shopify_item_id is None or here is None or here.available is None:
        return None  # no level there yet (or Shopify does not track the item there): nothing to compare with
    others = sum(level.available for level in state.shopify_levels
                 if level.counted and level.available is not None and level.location_id != settings.push_location)
    quantity = max(0, state.available - others)
    return ShopifyPushPlanned(sku=state.sku, push_id=push_id_for(cause_id), inventory_item_id=state.shopify_item_id,
                              location_id=settings.push_location, quantity=quantity, compare_quantity=here.available,
                              total=quantity + others, drift=drift, drift_at=drift_at)


def decide(cause: RecordedEvent, after: InventoryItem, settings: ShopifySyncSettings) -> SyncDecision:
    """What ``cause`` (already folded into ``after``) asks of Shopify. Pure."""
    data = cause.data
    if isinstance(data, (ShopifyPushPlanned, ShopifyPushSettled)):
        return SyncDecision()  # our own pushes never cause pushes
    expected = after.shopify_expected
    if isinstance(data, ShopifyLevelReported):
        if not data.counted:
            return SyncDecision()
        shown = after.shopify_available
        if is_echo(after, data, settings):
            # Our own push coming back: never drift, never an alert. Still reconciled (no alert)
            # when Shopify should now show something else -- an order we counted after the push
            # that Shopify had applied before our set overwrote it -- so that case converges too;
            # when Shopify applied the sale after our set, compare-and-set finds it done.
            # (Pushed even when it sets what Shopify already shows: the push re-anchors what Shopify
            # should show, which would otherwise stay off and turn later levels into false drift.)
            reconcile = expected is not None and shown is not None and shown != expected
            return SyncDecision(_push(after, settings, cause.id, None) if reconcile else None, echo=True)
        if shown is None:
            return SyncDecision()
        if expected is not None and shown != expected:
            return SyncDecision(_push(after, settings, cause.id, drift=shown - expected, drift_at=data.updated_at))
        return SyncDecision(_changing(_push(after, settings, cause.id, None), shown))
    if _overwritten(data, after, expected):  # pushed as the echo above, for the same reason
        return SyncDecision(_push(after, settings, cause.id, None))
    target = expected if expected is not None else after.shopify_available
    if target is None:
        return SyncDecision()
    return SyncDecision(_changing(_push(after, settings, cause.id, None), target))


def _changing(push: ShopifyPushPlanned | None, shows: int | None) -> ShopifyPushPlanned | None:
    """The push, unless Shopify already shows (or should show) what it would make it show. Compared
    with the push's total, not our available count: when the other counted locations hold more
    than we have, the push location goes to 0 and the total stays above it -- pushing again would
    never end."""
    return push if push is not None and push.total != shows else None


def _overwritten(data: object, after: InventoryItem, expected: int | None) -> bool:
    """A change Shopify applied itself (a sale, a restock) arrives while Shopify shows something
    else than it should. Normally its own level update is on its way and will match. But when the
    change happened before (or around) our last push, our compare-and-set may have overwritten it
    and no level update will come: push (compare-and-set, so if Shopify did apply it after our
    set, the push finds the value there and does nothing). A change well after the push waits for
    its level update. No alert either way: this is not a change made behind our back."""
    if not isinstance(data, (StockAdjusted, ReturnRecorded)) or not data.applied_by_shopify:
        return False
    shown, push = after.shopify_available, after.last_push
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
    push = decision.push
    effects: list[Effect] = [Count("ShopifyEchoesIgnored")] if decision.echo else []
    effects.extend(_close_explained_drift(reaction))
    if push is None:
        return effects
    event = reaction.event
    planned = NewEvent(PUSH_TYPE, push, source=SOURCE, correlation_id=event.correlation_id, causation_id=event.id)
    effects.append(Append(PlannedAppend(event.stream, (planned,), push_key(push.push_id)), "ShopifyPushes"))
    if push.drift is not None:
        effects.append(RaiseAlert(AlertRaised(
            alert_id=alert_id("sync_drift", event.id), alert_type="sync_drift", severity="warning",
            subject=event.stream, sku=push.sku, cause_event_id=event.id,
            message=(f"{push.sku}: Shopify shows {reaction.after.shopify_available} "
                     f"but should show {reaction.after.shopify_expected} (drift {push.drift:+d}); "
                     f"setting location {push.location_id} to {push.quantity} so it shows {push.total}"))))
    return effects


def _close_explained_drift(reaction: Reaction) -> list[Effect]:
    """A level that overtook the webhook of a sale (or refund) Shopify made before it looks like
    drift: it is corrected at once (compare-and-set) and alerted. When the overtaken webhooks arrive
    and explain all of it, the alert is marked read, with the reason -- so which drift alerts stay
    unread does not depend on the order Shopify's webhooks arrived in."""
    still_open = {drift.cause_id for drift in reaction.before.open_drifts if drift.left}
    effects: list[Effect] = []
    for drift in reaction.after.open_drifts:
        if drift.left or drift.cause_id not in still_open:
            continue
        closed = alert_id("sync_drift", drift.cause_id)
        read = AlertRead(alert_id=closed, read_by=f"dynafold: explained by Shopify's own change {reaction.event.id}, "
                                                  "reported after the level")
        new = NewEvent("dynafold.alerts.read.v1", read, source=SOURCE, correlation_id=reaction.event.correlation_id,
                       causation_id=reaction.event.id)
        effects.append(Append(PlannedAppend(f"alert:{closed}", (new,), f"drift-explained:{closed}"),
                              "ShopifyDriftsExplained"))
    return effects


RULES: tuple[Rule, ...] = (Rule("shopify_sync", _sync, view=InventoryProjection),)
