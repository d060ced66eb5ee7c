from hypothesis import given, settings
from hypothesis import strategies as st

from events.chain import verify_items
from events.envelope import GENESIS_HASH
from events.items import recompute_hash


def _chain(n):
    items, prev = [], GENESIS_HASH
    for version in range(1, n + 1):
        item = {
            "stream": {"S": "sku:A"}, "version": {"N": str(version)}, "id": {"S": f"e{version}"},
            "type": {"S": "dynafold.inventory.buffer_set.v1"}, "source": {"S": "urn:test"},
            "time": {"S": f"2026-01-01T00:00:0{version}.000000Z"},
            "data": {"S": f'{{"buffer":{version},"sku":"A"}}'},
            "correlation_id": {"S": "c"}, "prev_hash": {"S": prev},
        }
        item["hash"] = {"S": recompute_hash(item)}
        prev = item["hash"]["S"]
        items.append(item)
    return items


def test_intact_chain_verifies():
    report = verify_items("sku:A", _chain(4))
    assert report.ok and report.events == 4


def test_altered_data_is_found_at_its_version():
    items = _chain(4)
    items[2]["data"] = {"S": '{"buffer":99,"sku":"A"}'}
    report = verify_items("sku:A", items)
    assert (report.broken.stream, report.broken.version) == ("sku:A", 3)
    assert "altered" in report.broken.problem


def test_deleted_middle_event_is_found():
    items = _chain(4)
    del items[1]
    report = verify_items("sku:A", items)
    assert report.broken.version == 2 and "missing" in report.broken.problem


def test_rehashed_forgery_breaks_the_next_link():
    items = _chain(4)
    items[1]["data"] = {"S": '{"buffer":99,"sku":"A"}'}
    items[1]["hash"] = {"S": recompute_hash(items[1])}
    report = verify_items("sku:A", items)
    assert report.broken.version == 3 and "prev_hash" in report.broken.problem


def test_a_chain_cut_short_or_replaced_at_a_witness_is_broken():
    from events.chain import Witness

    items = _chain(4)
    sealed = Witness(4, items[-1]["hash"]["S"], "sealed checkpoint")
    assert verify_items("sku:A", items, [sealed]).ok
    assert verify_items("sku:A", items, [Witness(2, items[1]["hash"]["S"], "sealed checkpoint")]).ok  # moved on since
    cut = verify_items("sku:A", items[:2], [sealed])
    assert (cut.broken.version, cut.events) == (3, 2) and "truncated" in cut.broken.problem
    assert "sealed checkpoint recorded version 4" in cut.broken.problem
    assert "truncated" in verify_items("sku:A", [], [sealed]).broken.problem
    replaced = verify_items("sku:A", items, [Witness(4, "f" * 64, "sealed checkpoint")])
    assert replaced.broken.version == 4 and "replaced" in replaced.broken.problem


def test_the_furthest_witness_names_the_cut_and_a_witness_without_a_hash_counts_its_version():
    from events.chain import Witness

    items = _chain(4)
    witnesses = [Witness(2, items[1]["hash"]["S"], "sealed checkpoint"), Witness(4, None, "inventory view")]
    assert verify_items("sku:A", items, witnesses).ok
    cut = verify_items("sku:A", items[:3], witnesses)
    assert cut.broken.version == 4 and "inventory view recorded version 4" in cut.broken.problem
    swapped = verify_items("sku:A", [*items[:1], {**items[1], "hash": {"S": "e" * 64}}], witnesses)
    assert swapped.broken.version == 2 and "altered" in swapped.broken.problem


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(), min_size=7, max_size=7), causation=st.none() | st.text(), version=st.integers(1, 10**12))
def test_a_link_hashes_canonical_json_of_the_events_attributes_whatever_the_characters(values, causation, version):
    import hashlib

    from events.envelope import DATA_CONTENT_TYPE, canonical_json, format_sequence, link_hash

    stream, event_id, stored_type, source, time_text, data_text, correlation_id = values
    attributes = {"causationid": causation, "correlationid": correlation_id, "data": data_text,
                  "datacontenttype": DATA_CONTENT_TYPE, "id": event_id, "sequence": format_sequence(version),
                  "source": source, "subject": stream, "time": time_text, "type": stored_type}
    expected = hashlib.sha256(GENESIS_HASH.encode("ascii") + canonical_json(attributes).encode("utf-8")).hexdigest()
    assert link_hash(prev_hash=GENESIS_HASH, stream=stream, version=version, event_id=event_id,
                     stored_type=stored_type, source=source, time_text=time_text, data_text=data_text,
                     correlation_id=correlation_id, causation_id=causation) == expected


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_canonical_json_is_the_sorted_compact_utf8_spelling_whatever_the_characters(value):
    import json

    from events.envelope import canonical_json

    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
