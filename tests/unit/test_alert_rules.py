from datetime import datetime, timezone

from events.deliveries import DeadLettered
from events.envelope import RecordedEvent
from events.inventory import ReturnRecorded, StockAdjusted
from events.orders import OrderErrorsNotified
from projections.reactor.rules.alerts import alert_id, alerts_for, notification_unconfigured_alert
from projections.reactor.settings import AlertSettings
from projections.inventory import InventoryItem

AT = datetime(2026, 2, 6, 12, 0, tzinfo=timezone.utc)


def recorded(stream, data, event_id="evt-1", version=2):
    return RecordedEvent(stream=stream, version=version, id=event_id, type="t", source="s", time=AT, data=data,
                         correlation_id="c", causation_id=None, prev_hash="p", hash="h")


def inventory(physical, buffer=0):
    return InventoryItem(sku="A", physical=physical, buffer=buffer, updated_at="2026-02-06T11:00:00.000000Z")


SETTINGS = AlertSettings(low_stock_threshold=5, per_sku_thresholds={"B": 20})


def test_stock_low_fires_when_available_crosses_the_threshold():
    event = recorded("sku:A", StockAdjusted(sku="A", delta=-3, reason="order"))
    [alert] = alerts_for(event, SETTINGS, before=inventory(8), after=inventory(5))
    assert (alert.alert_type, alert.severity, alert.sku) == ("stock_low", "warning", "A")
    assert alert.alert_id == alert_id("stock_low", "evt-1") and alert.cause_event_id == "evt-1"


def test_stock_low_does_not_repeat_below_the_threshold_and_is_critical_at_zero():
    event = recorded("sku:A", StockAdjusted(sku="A", delta=-1, reason="order"))
    assert alerts_for(event, SETTINGS, before=inventory(4), after=inventory(3)) == []
    [alert] = alerts_for(event, SETTINGS, before=inventory(6), after=inventory(0))
    assert alert.severity == "critical"


def test_per_sku_threshold_wins():
    event = recorded("sku:B", StockAdjusted(sku="B", delta=-1, reason="order"))
    before, after = InventoryItem(sku="B", physical=21, updated_at="x"), InventoryItem(sku="B", physical=20)
    assert [a.alert_type for a in alerts_for(event, SETTINGS, before=before, after=after)] == ["stock_low"]


def test_damaged_return_raises_return_damaged_but_sellable_does_not():
    damaged = recorded("sku:A", ReturnRecorded(sku="A", quantity=1, disposition="DAMAGED", restocked=False))
    assert [a.alert_type for a in alerts_for(damaged, SETTINGS, inventory(50), inventory(50))] == ["return_damaged"]
    sellable = recorded("sku:A", ReturnRecorded(sku="A", quantity=1, disposition="SELLABLE", restocked=True))
    assert alerts_for(sellable, SETTINGS, inventory(50), inventory(51)) == []


def test_dead_letter_and_notification_alerts():
    dead = recorded("delivery:u:m", DeadLettered(attempts=4, reason="MAX_RETRIES_EXCEEDED"))
    assert [(a.alert_type, a.severity) for a in alerts_for(dead, SETTINGS)] == [("delivery_dead_lettered", "critical")]
    notified = recorded("order:o", OrderErrorsNotified(order_id="o", error_hashes=("h",)))
    assert [(a.alert_type, a.severity) for a in alerts_for(notified, SETTINGS)] == [("order_errors_notified", "info")]


def test_a_notice_given_as_an_alert_raises_no_second_alert():
    # The monitor without email settings already raised notification_unconfigured for it.
    notified = recorded("order:o", OrderErrorsNotified(order_id="o", error_hashes=("h",), channel="alert"))
    assert alerts_for(notified, SETTINGS) == []


def test_the_unconfigured_notice_alert_is_one_per_notification():
    first = notification_unconfigured_alert("order:o", "n-1", "Order SO-1: 1 unresolved error", "why")
    again = notification_unconfigured_alert("order:o", "n-1", "Order SO-1: 1 unresolved error", "why")
    other = notification_unconfigured_alert("order:o", "n-2", "Order SO-1: 2 unresolved errors", "why")
    assert first == again and first.alert_id != other.alert_id
    assert (first.alert_type, first.severity, first.subject) == ("notification_unconfigured", "warning", "order:o")


def test_the_same_cause_always_gives_the_same_alert():
    event = recorded("delivery:u:m", DeadLettered(attempts=4, reason="MAX_RETRIES_EXCEEDED"))
    assert alerts_for(event, SETTINGS) == alerts_for(event, SETTINGS)


# ----------------------------------------------------------------------------- the reactor's rule registry

def test_each_rule_declares_what_it_reacts_to():
    from projections.reactor.rules import REACTOR_RULES

    assert [rule.name for rule in REACTOR_RULES] == [
        "stock_broadcast", "shopify_sync", "return_damaged", "stock_low", "unmapped_item", "uncounted_sku",
        "sync_failed", "delivery_dead_lettered",
        "order_errors_notified"]
    assert all(rule.event_types or rule.view is not None for rule in REACTOR_RULES)
    reacting = lambda event: [rule.name for rule in REACTOR_RULES if rule.reacts_to(event)]  # noqa: E731
    assert reacting(recorded("sku:A", StockAdjusted(sku="A", delta=-1, reason="order"))) == [
        "stock_broadcast", "shopify_sync", "stock_low", "uncounted_sku"]
    assert reacting(recorded("sku:A", ReturnRecorded(sku="A", quantity=1, disposition="DAMAGED", restocked=False))) == [
        "stock_broadcast", "shopify_sync", "return_damaged", "stock_low", "uncounted_sku"]
    assert reacting(recorded("delivery:u:m", DeadLettered(attempts=4, reason="X"))) == ["delivery_dead_lettered"]
    assert reacting(recorded("order:o", OrderErrorsNotified(order_id="o", error_hashes=("h",)))) == [
        "order_errors_notified"]
    assert reacting(recorded("sku-ish:A", StockAdjusted(sku="A", delta=-1, reason="order"))) == []


def test_the_broadcast_rule_plans_appends_only_when_available_changes():
    from projections.reactor.rules.broadcast import RULES
    from projections.reactor.reaction import Append, Reaction

    [rule] = RULES
    event = recorded("sku:A", StockAdjusted(sku="A", delta=-3, reason="order"))
    effects = rule.plan(Reaction(event, SETTINGS, "https://shop.example/stock", inventory(8), inventory(5)))
    assert [type(e) for e in effects] == [Append, Append]
    assert [(e.plan.stream.split(":")[0], e.metric) for e in effects] == [("sku", "StockBroadcasts"), ("delivery", None)]
    assert rule.plan(Reaction(event, SETTINGS, "https://shop.example/stock", inventory(8), inventory(8))) == []
    assert rule.plan(Reaction(event, SETTINGS, None, inventory(8), inventory(5))) == []


def test_the_reactor_iterates_its_rules():
    from types import SimpleNamespace

    from processors.services.reactor import Reactor
    from projections.reactor.reaction import RaiseAlert, Rule

    appended = []

    class Store:
        def append(self, stream, events, expected, idempotency_key=None):
            appended.append((stream, idempotency_key))
            return SimpleNamespace(deduplicated=False)

    alert = alerts_for(recorded("order:o", OrderErrorsNotified(order_id="o", error_hashes=("h",))), SETTINGS)[0]
    rules = (Rule("always", lambda reaction: [RaiseAlert(alert)], event_types=(DeadLettered,)),)
    reactor = Reactor(Store(), views=None, settings=SETTINGS, rules=rules)
    assert reactor.react(recorded("delivery:u:m", DeadLettered(attempts=1, reason="X"))) == [alert]
    assert reactor.react(recorded("order:o", OrderErrorsNotified(order_id="o", error_hashes=("h",)))) == []
    assert appended == [(f"alert:{alert.alert_id}", f"alert:{alert.alert_id}")]


def test_a_rule_given_an_event_it_does_not_react_to_fails_loudly():
    """Reaction.data_as types a rule's data without assert: another event type is a wiring bug,
    reported as a TypeError naming both types (not an AttributeError deep in the rule)."""
    import pytest

    from projections.reactor.reaction import Reaction

    event = recorded("sku:A", StockAdjusted(sku="A", delta=-1, reason="order"))
    assert Reaction(event, SETTINGS).data_as(StockAdjusted) is event.data
    with pytest.raises(TypeError, match="ReturnRecorded given StockAdjusted"):
        Reaction(event, SETTINGS).data_as(ReturnRecorded)


# ----------------------------------------------------------------------------- uncounted SKUs (issue 18 §1)

def _listed(physical=0, counted=False):
    from projections.inventory.fold import ListedItem, LocationLevel

    level = LocationLevel("487838322", 50, "2026-02-06T11:00:00.000000Z", True)
    return InventoryItem(sku="A", physical=physical, counted=counted, updated_at="2026-02-06T11:00:00.000000Z",
                         shopify_items=(ListedItem("808950810", levels=(level,)),))


def test_a_sku_shopify_lists_but_never_counted_here_raises_one_uncounted_sku_alert_and_no_stock_low():
    from events.inventory import ShopifyLevelReported
    from projections.reactor.rules.alerts import RULES
    from projections.reactor.reaction import Append, Reaction

    level = recorded("sku:A", ShopifyLevelReported(sku="A", inventory_item_id="808950810", location_id="487838322",
                                                   available=50, updated_at="2026-02-06T11:00:00.000000Z",
                                                   counted=True))
    [alert] = alerts_for(level, SETTINGS, before=InventoryItem(sku="A"), after=_listed())
    assert (alert.alert_type, alert.alert_id, alert.sku) == ("uncounted_sku", alert_id("uncounted_sku", "A"), "A")
    assert "808950810 shows 50" in alert.message and "shopify adopt --sku A" in alert.message
    assert alerts_for(level, SETTINGS, before=_listed(), after=_listed()) == []  # once per SKU
    from projections.inventory import ListedItem

    mapped_only = InventoryItem(sku="A", updated_at="x", shopify_items=(ListedItem("808950810"),))
    assert alerts_for(level, SETTINGS, before=InventoryItem(sku="A"), after=mapped_only) == []  # nothing reported yet
    counted = recorded("sku:A", StockAdjusted(sku="A", delta=0))
    [rule] = [rule for rule in RULES if rule.name == "uncounted_sku"]
    [read] = rule.plan(Reaction(counted, SETTINGS, before=_listed(), after=_listed(50, counted=True)))
    assert isinstance(read, Append) and read.plan.stream == f"alert:{alert.alert_id}"
    assert read.plan.events[0].data.read_by.startswith("dynafold: counted here")
