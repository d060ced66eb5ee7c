"""Issue 11 §4: what Shopify should show, echoes, drift and corrective pushes (the pure rule)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from events.alerts import AlertRaised
from events.inventory import BufferSet, PhysicalCountSet, ShopifyLevelReported, ShopifyPushPlanned, StockAdjusted
from events.envelope import format_time
from projections.reactor.settings import AlertSettings
from projections.inventory import InventoryProjection
from projections.reactor.reaction import Append, Count, RaiseAlert, Reaction
from projections.reactor.rules.shopify_sync import RULES, push_id_for, push_key
from projections.reactor.settings import ShopifySyncSettings
from tests.unit.test_folds import T0, history, recorded

HERE = "487838322"
SETTINGS = ShopifySyncSettings(push_location=HERE)
m = timedelta(minutes=1)


def level(available: int, at: timedelta) -> ShopifyLevelReported:
    return ShopifyLevelReported(sku="P", inventory_item_id="808950810", location_id=HERE, available=available,
                                updated_at=format_time(T0 + at), counted=True)


def effects(steps, settings=SETTINGS):
    """The rule's effects for the last step, after folding the others."""
    events = history("sku:P", steps)
    before = InventoryProjection.fold("P", events[:-1])
    after = InventoryProjection.apply(before, events[-1])
    reaction = Reaction(events[-1], AlertSettings(), before=before, after=after, shopify=settings)
    return list(RULES[0].plan(reaction)), events


def pushed(quantity: int, compare: int, total: int | None = None) -> ShopifyPushPlanned:
    return ShopifyPushPlanned(sku="P", push_id="push-0", inventory_item_id="808950810", location_id=HERE,
                              quantity=quantity, compare_quantity=compare, total=quantity if total is None else total)


def test_nothing_is_pushed_before_shopify_reported_a_level_or_without_a_push_location():
    assert effects([(0 * m, PhysicalCountSet(sku="P", physical=10))])[0] == []
    steps = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m))]
    assert effects(steps, settings=None)[0] == []


def test_a_first_level_that_differs_from_our_count_is_set_without_a_drift_alert():
    found, events = effects([(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m))])
    assert [type(effect) for effect in found] == [Append]
    plan = found[0].plan
    push = plan.events[0].data
    assert (push.quantity, push.compare_quantity, push.total, push.drift) == (10, 4, 10, None)
    assert plan.stream == "sku:P" and plan.idempotency_key == push_key(push_id_for(events[-1].id))


def test_an_echo_of_our_push_is_never_drift():
    sale = StockAdjusted(sku="P", delta=-1, reason="order", applied_by_shopify=True,
                         occurred_at=format_time(T0 + 10 * m))
    base = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4)),
            (11 * m, sale)]
    assert effects(base)[0] == []  # Shopify sold it itself, well after our push: its level update will say 9
    assert effects([*base, (4 * m, level(9, 3 * m))])[0] == []  # Shopify's level after its sale
    # The echo of our push (10) arrives after the order we counted: no drift, no alert; since
    # Shopify should show 9, a compare-and-set push reconciles it (if Shopify applied the sale
    # after our set, it finds 9 there and does nothing).
    found, _ = effects([*base, (12 * m, level(10, 2 * m + timedelta(seconds=5)))])
    assert [type(effect) for effect in found] == [Count, Append]
    found = found[1:]
    push = found[0].plan.events[0].data
    assert (push.quantity, push.compare_quantity, push.drift) == (9, 10, None)
    echo_alone = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4)),
                  (4 * m, level(10, 2 * m + timedelta(seconds=5)))]
    assert effects(echo_alone)[0] == [Count("ShopifyEchoesIgnored")]


def test_a_manual_edit_in_shopify_raises_sync_drift_and_is_corrected():
    base = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4))]
    found, events = effects([*base, (60 * m, level(25, 60 * m))])
    append, alert = found
    assert isinstance(append, Append) and isinstance(alert, RaiseAlert)
    push = append.plan.events[0].data
    assert (push.quantity, push.compare_quantity, push.drift) == (10, 25, 15)
    assert isinstance(alert.alert, AlertRaised) and alert.alert.alert_type == "sync_drift"
    assert "drift +15" in alert.alert.message
    # The same edit reported twice (a redelivery under another webhook id) plans the same push id
    # per cause; the count itself never moves with a level.
    assert InventoryProjection.fold("P", events).physical == 10


def test_our_own_changes_are_pushed_without_an_alert():
    base = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4)),
            (3 * m, level(10, 2 * m))]
    found, _ = effects([*base, (4 * m, BufferSet(sku="P", buffer=3))])
    assert [type(effect) for effect in found] == [Append]
    assert (found[0].plan.events[0].data.quantity, found[0].plan.events[0].data.compare_quantity) == (7, 10)
    assert effects([*base, (4 * m, pushed(7, 10))])[0] == []  # a push never causes a push


def test_a_sale_made_around_our_push_is_pushed_again_since_our_set_may_have_overwritten_it():
    base = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4)),
            (3 * m, level(10, 2 * m))]
    for occurred in (format_time(T0 + 1 * m), None):  # before the push, or Shopify's time unknown
        sale = StockAdjusted(sku="P", delta=-1, reason="order", applied_by_shopify=True, occurred_at=occurred)
        found, _ = effects([*base, (5 * m, sale)])
        push = found[0].plan.events[0].data
        assert (push.quantity, push.compare_quantity, push.drift) == (9, 10, None) and len(found) == 1


def test_a_merchant_edit_in_the_second_of_our_push_is_not_hidden_by_it():
    """Shopify's updated_at has whole seconds: an edit reported for the second our push settled in
    must still count (found by the demo: the edit was taken for older than our push and ignored)."""
    from events.inventory import ShopifyPushSettled

    settled_at = 3 * m + timedelta(microseconds=400_000)
    steps = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4)),
             (settled_at, ShopifyPushSettled(sku="P", push_id="push-0", outcome="applied", quantity=10, attempts=1)),
             (4 * m, level(30, 3 * m))]  # Shopify's time of the edit: the same second, without its fraction
    found, events = effects(steps)
    assert InventoryProjection.fold("P", events).item("808950810").available == 30
    assert [type(effect) for effect in found] == [Append, RaiseAlert]
    older = [*steps[:-1], (4 * m, level(30, 2 * m + timedelta(seconds=59)))]  # reported before our set: stale
    assert InventoryProjection.fold("P", history("sku:P", older)).item("808950810").available == 10


def test_when_other_locations_hold_more_than_we_have_one_push_sets_ours_to_zero_and_it_ends_there():
    """Found in review: the decision compared Shopify with our available count, which a push cannot
    reach when the other counted locations hold more; every settled push then planned another."""
    from events.inventory import ShopifyPushSettled

    elsewhere = ShopifyLevelReported(sku="P", inventory_item_id="808950810", location_id="1", available=8,
                                     updated_at=format_time(T0), counted=True)
    base = [(0 * m, PhysicalCountSet(sku="P", physical=5)), (1 * m, elsewhere), (2 * m, level(4, 2 * m))]
    found, _ = effects(base)
    push = found[0].plan.events[0].data
    assert (push.quantity, push.total) == (0, 8)  # the most a push here can do
    settled = ShopifyPushSettled(sku="P", push_id="push-0", outcome="applied", quantity=0, attempts=1)
    after = [*base, (3 * m, pushed(0, 4, total=8)), (4 * m, settled)]
    assert effects(after)[0] == []
    assert effects([*after, (5 * m, level(0, 4 * m))])[0] == [Count("ShopifyEchoesIgnored")]
    assert effects([*after, (5 * m, BufferSet(sku="P", buffer=1))])[0] == []  # still nothing a push could change


def test_a_drift_alert_is_closed_when_the_sale_that_explains_it_arrives_late():
    """Shopify sells one (its level 9 says so), but the orders/create webhook comes after the level:
    drift -1, alerted and corrected at once; when the order arrives it explains all of it, and the
    alert is marked read with the reason. A merchant's edit is never explained that way."""
    from events.alerts import AlertRead

    base = [(0 * m, PhysicalCountSet(sku="P", physical=10)), (1 * m, level(4, 1 * m)), (2 * m, pushed(10, 4)),
            (3 * m, level(10, 2 * m))]
    found, events = effects([*base, (5 * m, level(9, 4 * m))])
    drift_push = found[0].plan.events[0].data
    alert = found[1].alert
    assert (drift_push.drift, alert.alert_type) == (-1, "sync_drift")
    planned = recorded("sku:P", 6, drift_push, T0 + 6 * m)
    planned = replace(planned, causation_id=events[-1].id)
    sale = StockAdjusted(sku="P", delta=-1, reason="order", applied_by_shopify=True,
                         occurred_at=format_time(T0 + 3 * m + timedelta(seconds=30)))
    state = InventoryProjection.fold("P", [*events, planned])
    after_sale = InventoryProjection.apply(state, recorded("sku:P", 7, sale, T0 + 7 * m))
    closing = RULES[0].plan(Reaction(recorded("sku:P", 7, sale, T0 + 7 * m), AlertSettings(), before=state,
                                     after=after_sale, shopify=SETTINGS))
    reads = [e.plan.events[0].data for e in closing if isinstance(e, Append) and isinstance(e.plan.events[0].data,
                                                                                            AlertRead)]
    assert [read.alert_id for read in reads] == [alert.alert_id] and "explained" in (reads[0].read_by or "")
    # a sale from before the push the drift was measured against explains nothing
    old_sale = StockAdjusted(sku="P", delta=-1, reason="order", applied_by_shopify=True,
                             occurred_at=format_time(T0 + 1 * m))
    after_old_sale = InventoryProjection.apply(state, recorded("sku:P", 7, old_sale, T0 + 7 * m))
    assert after_old_sale.item("808950810").open_drifts == state.item("808950810").open_drifts



# ----------------------------------------------------------------------------- issue 18 §1-2

def test_a_sku_never_counted_here_is_never_pushed():
    """Issue 18 §1: a level (Shopify shows 50) for a mapped SKU with no count here planned
    quantity 0, compare 50 -- no alert: turning pushes on zeroed every SKU not yet stock-taken."""
    assert effects([(0 * m, level(50, 0 * m))])[0] == []
    assert effects([(0 * m, level(50, 0 * m)), (1 * m, BufferSet(sku="P", buffer=2))])[0] == []
    sale = StockAdjusted(sku="P", delta=-1, reason="order", applied_by_shopify=True)
    assert effects([(0 * m, level(50, 0 * m)), (1 * m, sale)])[0] == []
    counted, _ = effects([(0 * m, level(50, 0 * m)), (1 * m, PhysicalCountSet(sku="P", physical=48))])
    assert [(e.plan.events[0].data.quantity, e.plan.events[0].data.compare_quantity) for e in counted] == [(48, 50)]


FIRST, SECOND = "1070325021", "1070325022"  # Shopify's own sample: two variants with SKU "123"


def shared(item: str, available: int, at: timedelta) -> ShopifyLevelReported:
    return ShopifyLevelReported(sku="P", inventory_item_id=item, location_id=HERE, available=available,
                                updated_at=format_time(T0 + at), counted=True)


def linked(item: str):
    from events.inventory import ShopifyItemLinked

    return ShopifyItemLinked(sku="P", inventory_item_id=item, variant_id=item, source="products")


def planned(effect) -> ShopifyPushPlanned:
    return effect.plan.events[0].data


def test_every_item_of_a_shared_sku_is_pushed_our_count_compare_and_set_on_its_own():
    """Issue 18 §2: the SKU's levels were one item's (the last reported), so only that item was pushed."""
    base = [(0 * m, linked(FIRST)), (0 * m, linked(SECOND)), (1 * m, shared(FIRST, 9, 1 * m)),
            (2 * m, shared(SECOND, 7, 2 * m))]
    found, events = effects([*base, (3 * m, PhysicalCountSet(sku="P", physical=10))])
    pushes = [planned(e) for e in found]
    assert [(p.inventory_item_id, p.quantity, p.compare_quantity, p.drift) for p in pushes] == [
        (FIRST, 10, 9, None), (SECOND, 10, 7, None)]
    assert len({p.push_id for p in pushes}) == 2
    assert [e.plan.idempotency_key for e in found] == [push_key(push_id_for(events[-1].id, item))
                                                      for item in (FIRST, SECOND)]


def _both_pushed_to(count: int) -> list:
    """Two items of SKU P, both set to ``count`` by our pushes and echoed back."""
    from events.inventory import ShopifyPushSettled

    steps = [(0 * m, linked(FIRST)), (0 * m, linked(SECOND)), (1 * m, shared(FIRST, 9, 1 * m)),
             (1 * m, shared(SECOND, 7, 1 * m)), (2 * m, PhysicalCountSet(sku="P", physical=count))]
    for index, (item, was) in enumerate(((FIRST, 9), (SECOND, 7))):
        push = ShopifyPushPlanned(sku="P", push_id=f"push-{index}", inventory_item_id=item, location_id=HERE,
                                  quantity=count, compare_quantity=was, total=count)
        steps += [(3 * m, push), (3 * m, ShopifyPushSettled(sku="P", push_id=f"push-{index}", outcome="applied",
                                                            quantity=count, attempts=1)),
                  (4 * m, shared(item, count, 3 * m))]
    return steps


def test_a_sale_on_one_listing_is_no_drift_there_and_is_pushed_to_the_others():
    sale = StockAdjusted(sku="P", delta=-2, reason="order", applied_by_shopify=True, by_variant={SECOND: -2},
                         occurred_at=format_time(T0 + 20 * m))
    steps = [*_both_pushed_to(10), (21 * m, sale)]
    found, _ = effects(steps)
    assert [(planned(e).inventory_item_id, planned(e).quantity, planned(e).compare_quantity) for e in found] == [
        (FIRST, 8, 10)]  # the listing Shopify did not sell from; the other's own level update says 8
    assert effects([*steps, (22 * m, shared(SECOND, 8, 20 * m))])[0] == []


def test_drift_is_judged_per_item():
    found, _ = effects([*_both_pushed_to(10), (60 * m, shared(SECOND, 25, 60 * m))])
    append, alert = found
    assert (planned(append).inventory_item_id, planned(append).quantity, planned(append).drift) == (SECOND, 10, 15)
    assert alert.alert.alert_type == "sync_drift" and f"item {SECOND} shows 25" in alert.alert.message
    assert effects([*_both_pushed_to(10), (60 * m, shared(FIRST, 10, 60 * m))])[0] == []  # the other item: as it should be
