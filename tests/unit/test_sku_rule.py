"""The one SKU rule (issue 18 §4): what it refuses, that what it accepts fits every key a SKU
becomes, and that every entry applies it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from events import catalogue
from events.appending import KEY_LIMITS
from events.errors import DynafoldError
from events.shopify import PAYLOADS
from events.skus import MAX_SKU_BYTES, sku_problem
from events.appending import check_count
from processors.api import admin
from processors.api.admin import ItemBody
from processors.api.routing import MAX_PATH_PARAM_BYTES
from processors.api.http import HttpRequest, check_key_bytes
from processors.operations.template import table_definitions
from processors.services.shopify_items import checked_row, parse_import
from tests.shopify_fixtures import payload

CLEF = "\U0001d11e"  # 4 bytes in UTF-8


@pytest.mark.parametrize("sku, fragment", [
    ("A\nB", "control character (U+000A)"),
    ("A\x7f", "control character (U+007F)"),
    ("A\x85", "control character (U+0085)"),
    ("", "blank"), ("   ", "blank"),
    ("\ud800", "lone surrogate"),
    (CLEF * 512, "2048 bytes"),  # 512 characters: the stream's character limit holds, its key bytes do not
    (CLEF * 257, "1028 bytes"),
    ("x" * 513, "513 characters"),
])
def test_unusable_skus_are_named_with_their_reason(sku, fragment):
    problem = sku_problem(sku)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize("sku", ["IPOD2008PINK", "PROD/9", "123", " padded ", CLEF * 256, "x" * 512, "ü" * 512])
def test_usable_skus_pass_unchanged(sku):
    assert sku_problem(sku) is None


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=600) | st.text(st.sampled_from([CLEF, "€", "a", " "]),
                                                                      min_size=500, max_size=520))
def test_every_sku_the_rule_accepts_makes_a_stream_id_the_store_accepts(sku):
    if sku_problem(sku) is not None:
        return
    stream = f"sku:{sku}"
    assert catalogue.stream_category(stream) == "sku"
    assert len(stream.encode("utf-8")) <= KEY_LIMITS["stream"]


def test_the_rule_fits_every_key_a_sku_lands_in():
    """Derived from template.yaml: wherever an attribute named sku is a key (the views' partition
    keys, the alerts' by-sku index), the rule's byte limit fits it (2048 a partition key, 1024 a
    sort key); and the stream key, the admin routes' path parameter and their idempotency keys."""
    limits = {"HASH": 2048, "RANGE": 1024}
    found = []
    for name, table in table_definitions().items():
        schemas = [table.properties["KeySchema"]] + [index["KeySchema"] for index in
                                                     table.properties.get("GlobalSecondaryIndexes", [])]
        found += [(name, key["KeyType"]) for schema in schemas for key in schema if key["AttributeName"] == "sku"]
    assert found, "no table keys by sku: the test would prove nothing"
    assert all(limits[kind] >= MAX_SKU_BYTES for _, kind in found), found
    widest = "\U0001d11e" * (MAX_SKU_BYTES // 4)
    assert sku_problem(widest) is None and len(f"sku:{widest}".encode()) <= KEY_LIMITS["stream"]
    assert MAX_SKU_BYTES <= MAX_PATH_PARAM_BYTES  # every SKU can be counted, buffered and read by its path
    request = HttpRequest("PUT", "/", {"idempotency-key": "\U0001d11e" * 200}, {}, b"")  # the longest key
    for route in ("count", "buffer"):
        key = admin._key(request, f"{route}:{widest}")
        assert key is not None and widest in key
        check_key_bytes("idempotency key", key)
        check_count(["event"], key)


@pytest.mark.parametrize("topic, path", [
    ("orders/create", ("line_items", 0, "sku")),
    ("refunds/create", ("refund_line_items", 0, "line_item", "sku")),
    ("products/create", ("variants", 1, "sku")),
    ("inventory_items/create", ("sku",)),
])
def test_every_shopify_sku_field_refuses_an_unusable_sku_and_reads_blank_as_none(topic, path):
    def with_sku(value):
        body = payload(topic)
        node = body
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return body

    def read(body):
        node = PAYLOADS[topic].model_validate(body)
        for step in path:
            node = node[step] if isinstance(step, int) else getattr(node, step)
        return node

    for bad in ("A\nB", CLEF * 512):
        with pytest.raises(ValidationError, match="SKU"):
            PAYLOADS[topic].model_validate(with_sku(bad))
    assert read(with_sku("  ")) is None and read(with_sku(None)) is None
    assert read(with_sku("OK-1")) == "OK-1"


def test_operator_entries_apply_the_rule():
    with pytest.raises(ValidationError, match="2048 bytes"):
        ItemBody.model_validate({"sku": CLEF * 512})
    with pytest.raises(DynafoldError, match="control character"):
        checked_row({"inventory_item_id": 5, "sku": "A\u0000"}, "arguments")
    with pytest.raises(DynafoldError, match="line 3: sku: SKU is 2048 bytes"):
        parse_import(f"inventory_item_id,sku\n1,A\n2,{CLEF * 512}\n", "csv")
