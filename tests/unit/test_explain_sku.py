""""Why does Shopify show 3 when we have 5?" (issue 19 §A3): the pure answer from a SKU's history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from events.envelope import RecordedEvent, format_time
from events.errors import NotFound
from events.inventory import (
    BufferSet,
    PhysicalCountSet,
    ShopifyLevelReported,
    ShopifyPushPlanned,
    ShopifyPushSettled,
)
from projections.inventory.explain import explain_sku
from projections.reactor.settings import ShopifySyncSettings
from tests.unit.test_folds import T0, recorded

ITEM, HERE = "808950810", "487838322"
SETTINGS = ShopifySyncSettings(push_location=HERE)
m = timedelta(minutes=1)


class History:
    """A SKU's stream, built event by event (pushes name the level they answer, as the reactor's do)."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def add(self, at: timedelta, data: object, cause: RecordedEvent | None = None) -> RecordedEvent:
        event = replace(recorded("sku:P", len(self.events) + 1, data, T0 + at),
                        causation_id=cause.id if cause else None)
        self.events.append(event)
        return event

    def level(self, at: timedelta, available: int) -> RecordedEvent:
        return self.add(at, ShopifyLevelReported(sku="P", inventory_item_id=ITEM, location_id=HERE,
                                                 available=available, updated_at=format_time(T0 + at), counted=True))

    def push(self, at: timedelta, cause: RecordedEvent, push_id: str, quantity: int, compare: int,
             drift: int | None = None, outcome: str = "applied") -> None:
        self.add(at, ShopifyPushPlanned(sku="P", push_id=push_id, inventory_item_id=ITEM, location_id=HERE,
                                        quantity=quantity, compare_quantity=compare, total=quantity, drift=drift,
                                        drift_at=cause.data.updated_at if drift else None), cause)
        self.add(at + timedelta(seconds=1), ShopifyPushSettled(
            sku="P", push_id=push_id, outcome=outcome, quantity=quantity if outcome != "failed" else None,
            attempts=1, detail="Shopify refused it" if outcome == "failed" else ""))


def demo_like() -> History:
    """Shopify showed 4 where we counted 10: pushed; its echo; a merchant's 25: drift, set back."""
    story = History()
    story.add(0 * m, PhysicalCountSet(sku="P", physical=10))
    first = story.level(1 * m, 4)
    story.push(2 * m, first, "push-1", 10, 4)
    story.level(3 * m, 10)  # the echo
    edit = story.level(60 * m, 25)
    story.push(61 * m, edit, "push-2", 10, 25, drift=15)
    story.level(62 * m, 10)  # its echo
    return story


def test_a_sku_in_sync_is_told_in_sentences_with_every_part_of_the_question():
    story = demo_like()
    answer = explain_sku("P", story.events, SETTINGS)
    assert answer.answer == ("Shopify shows 10 on item 808950810 for P, as it should: we have 10 available "
                             "(physical 10 - buffer 0).")
    sections = {section.title: section.sentences for section in answer.sections}
    assert sections["Our count"][1] == ("Physical 10, buffer 0 held back: 10 available to sell "
                                        "(physical - buffer, never below 0).")
    item = sections[f"Shopify item {ITEM}"]
    assert item[0] == (f"At location {HERE} (the push location): 10, as Shopify last reported it, at "
                       f"{format_time(T0 + 62 * m)} (Shopify's time).")
    assert "Last push push-2" in item[-1] and "(compare-and-set against 25)" in item[-1]
    assert f"answering Shopify's level 25 of item {ITEM} at {format_time(T0 + 60 * m)}" in item[-1]
    assert "applied: Shopify holds 10 there" in item[-1]
    assert sections["Echoes of our pushes"][0].startswith("2 level update(s) were our own pushes coming back")
    [drift] = sections["Drift"]
    assert "showed 25 where it should have shown 10 (drift +15): a sync_drift alert" in drift
    assert answer.facts["echoes_ignored"] == 2 and answer.facts["drifts"][0]["outcome"] == "applied"
    assert story.events[4].id in answer.event_ids  # the level that showed the drift


def test_why_shopify_shows_something_else():
    story = demo_like()
    story.add(70 * m, BufferSet(sku="P", buffer=5))  # no push followed (say, pushes switched off)
    answer = explain_sku("P", story.events, None)
    assert answer.answer.startswith("Shopify shows 10 for P on item 808950810, where we have 5 available "
                                    "(physical 10 - buffer 5): our count changed after our last push")
    assert "DYNAFOLD_SHOPIFY_PUSH_LOCATION" in answer.answer

    failed = History()
    failed.add(0 * m, PhysicalCountSet(sku="P", physical=5))
    failed.push(2 * m, failed.level(1 * m, 3), "push-1", 5, 3, outcome="failed")
    assert "our last push push-1 failed (Shopify refused it)" in explain_sku("P", failed.events, SETTINGS).answer


def test_an_uncounted_sku_says_nothing_is_pushed_and_how_to_adopt():
    story = History()
    story.level(0 * m, 50)
    answer = explain_sku("P", story.events, SETTINGS)
    assert answer.answer == ("Shopify shows 50 on item 808950810, and P was never counted here, so dynafold pushes "
                             "nothing to Shopify for it: count it, or adopt Shopify's level "
                             "(`dynafold shopify adopt --sku P`).")
    assert answer.facts["counted"] is False


def test_an_unknown_sku_is_not_found():
    with pytest.raises(NotFound, match="SKU 'NOPE'"):
        explain_sku("NOPE", [], SETTINGS)
