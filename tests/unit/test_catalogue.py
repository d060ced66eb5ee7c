import json

import pytest

from events import catalogue
from events.errors import InvalidEventData, InvalidStreamId, UnknownEventType
from events.inventory import StockAdjusted


def test_every_type_is_versioned_and_has_a_schema():
    schemas = catalogue.json_schemas()
    assert len(schemas) == len(catalogue.CURRENT) >= 18
    for entry in schemas:
        assert entry["type"].startswith("dynafold.") and ".v" in entry["type"]
        assert entry["schema"]["type"] == "object"
        assert entry["schema"]["additionalProperties"] is False


def test_unknown_type_is_rejected():
    with pytest.raises(UnknownEventType, match=r"dynafold\.inventory\.teleported\.v1"):
        catalogue.validate("dynafold.inventory.teleported.v1", {"sku": "A"})


def test_misspelt_field_is_named_not_dropped():
    with pytest.raises(InvalidEventData) as caught:
        catalogue.validate("dynafold.inventory.buffer_set.v1", {"sku": "A", "buffer": 2, "bufer": 3})
    assert caught.value.field == "bufer"
    assert "unknown field" in str(caught.value)


def test_invalid_value_names_the_nested_field():
    data = {"order_id": "o1", "errors": [{"error_hash": "h", "rule": "r", "message": "m", "severity": "fatal"}]}
    with pytest.raises(InvalidEventData) as caught:
        catalogue.validate("dynafold.orders.validated.v1", data)
    assert caught.value.field == "errors.0.severity"


def test_old_version_cannot_be_appended_but_is_upcast_on_read():
    with pytest.raises(UnknownEventType, match="old version"):
        catalogue.resolve("dynafold.inventory.stock_adjusted.v1")
    current_type, data = catalogue.decode(
        "dynafold.inventory.stock_adjusted.v1", json.dumps({"sku": "A", "quantity_change": -3})
    )
    assert current_type == "dynafold.inventory.stock_adjusted.v2"
    assert data == StockAdjusted(sku="A", delta=-3, reason="unspecified")


def test_future_version_is_unknown():
    with pytest.raises(UnknownEventType):
        catalogue.decode("dynafold.inventory.stock_adjusted.v9", "{}")


@pytest.mark.parametrize("stream", ["sku", "sku:", "nope:PROD-1", "SKU:PROD-1", "sku:a\nb"])
def test_stream_ids_are_checked(stream):
    with pytest.raises(InvalidStreamId):
        catalogue.stream_category(stream)
