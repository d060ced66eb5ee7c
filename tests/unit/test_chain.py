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


def test_a_chain_cut_short_or_replaced_at_its_recorded_head_is_broken():
    from events.chain import RecordedHead

    items = _chain(4)
    head = RecordedHead(4, items[-1]["hash"]["S"])
    assert verify_items("sku:A", items, head).ok
    assert verify_items("sku:A", items, RecordedHead(2, items[1]["hash"]["S"])).ok  # head read before later appends
    cut = verify_items("sku:A", items[:2], head)
    assert (cut.broken.version, cut.events) == (3, 2) and "truncated" in cut.broken.problem
    assert "truncated" in verify_items("sku:A", [], head).broken.problem
    replaced = verify_items("sku:A", items, RecordedHead(4, "f" * 64))
    assert replaced.broken.version == 4 and "replaced" in replaced.broken.problem
