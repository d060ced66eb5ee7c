"""The live projector seals each stream's highest inserted version (events/checkpoints.py), from the
stream records it is handed, off the append path; a stream whose seal fails is retried."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from events.checkpoints import Checkpoint
from events.envelope import NewEvent
from events.memory import InMemoryEventLog
from processors.handlers.projector import project_records
from processors.local.tables import view_keys
from projections.batch import BatchProjector
from projections.memory import InMemoryViewRows
from projections.registry import VIEWS


def adjust(sku: str, delta: int) -> NewEvent:
    return NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": delta, "reason": "order"})


def records(log: InMemoryEventLog, stream: str, event_name: str = "INSERT") -> list[dict[str, Any]]:
    """The stream records of a stream's items, as the event source mapping delivers them."""
    return [{"eventName": event_name, "dynamodb": {"SequenceNumber": f"{stream}-{item['version']['N']}",
                                                    "Keys": {"stream": item["stream"], "version": item["version"]},
                                                    "NewImage": item}}
            for item in log.read_items(stream)]


def projector(log: InMemoryEventLog, seal: Any = None, rows: InMemoryViewRows | None = None) -> BatchProjector:
    return BatchProjector(rows or InMemoryViewRows(view_keys()), log.read_stream, VIEWS,
                          seal=log.seal if seal is None else seal)


def test_each_stream_of_a_batch_is_sealed_at_its_highest_inserted_version():
    log = InMemoryEventLog()
    log.append("sku:A", [adjust("A", 5), adjust("A", -1), adjust("A", -1)])
    log.append("sku:B", [adjust("B", 2)])
    batch = records(log, "sku:A") + records(log, "sku:B")
    _, response = project_records(batch, projector(log).project)
    assert response == {"batchItemFailures": []}
    a, b = log.read_stream("sku:A")[-1], log.read_stream("sku:B")[-1]
    assert log.sealed_checkpoints() == {"sku:A": Checkpoint("sku:A", 3, a.hash, a.id),
                                        "sku:B": Checkpoint("sku:B", 1, b.hash, b.id)}
    assert len(log.checkpoints) == 2  # one seal per stream and batch, not per event


def test_what_the_record_inserted_is_sealed_not_what_the_table_holds_or_a_later_modify():
    log = InMemoryEventLog()
    log.append("sku:A", [adjust("A", 5), adjust("A", -1)])
    inserted = records(log, "sku:A")
    appended = log.read_stream("sku:A")[-1]
    forged = {**log.items["sku:A"][2], "hash": {"S": "f" * 64}}
    log.items["sku:A"][2] = forged  # overwritten before the projector read the INSERT record
    modified = records(log, "sku:A", event_name="MODIFY")
    project_records(inserted[:1] + modified, projector(log).project)  # a MODIFY seals nothing
    assert log.sealed_checkpoint("sku:A") == Checkpoint("sku:A", 1, inserted[0]["dynamodb"]["NewImage"]["hash"]["S"],
                                                        inserted[0]["dynamodb"]["NewImage"]["id"]["S"])
    project_records(inserted, projector(log).project)
    assert log.sealed_checkpoint("sku:A") == Checkpoint("sku:A", 2, appended.hash, appended.id)
    report = log.verify_stream("sku:A")
    assert report.broken is not None and report.broken.version == 2


def test_a_failed_seal_holds_its_stream_back_and_the_redelivery_seals_it():
    log = InMemoryEventLog()
    log.append("sku:A", [adjust("A", 5)])
    log.append("sku:B", [adjust("B", 5)])
    batch = records(log, "sku:A") + records(log, "sku:B")

    def refusing(checkpoints: Sequence[Checkpoint]) -> Mapping[str, Exception]:
        log.seal([c for c in checkpoints if c.stream != "sku:A"])
        return {"sku:A": RuntimeError("ThrottlingError")}

    rows = InMemoryViewRows(view_keys())
    outcome, response = project_records(batch, projector(log, refusing, rows).project)
    assert response == {"batchItemFailures": [{"itemIdentifier": "sku:A-1"}]}
    assert "seal" in (outcome.streams[0].failure or "") and set(log.sealed_checkpoints()) == {"sku:B"}
    # Lambda retries from the failed record: the rows are there already (a duplicate), the seal lands.
    outcome, response = project_records(batch[:1], projector(log, rows=rows).project)
    assert response == {"batchItemFailures": []} and outcome.streams[0].duplicates == 1
    assert set(log.sealed_checkpoints()) == {"sku:A", "sku:B"}


def test_a_seal_that_raises_holds_back_every_stream_of_the_batch():
    log = InMemoryEventLog()
    log.append("sku:A", [adjust("A", 5)])
    log.append("sku:B", [adjust("B", 5)])

    def broken(checkpoints: Sequence[Checkpoint]) -> Mapping[str, Exception]:
        raise ConnectionError("endpoint unreachable")

    _, response = project_records(records(log, "sku:A") + records(log, "sku:B"), projector(log, broken).project)
    assert response == {"batchItemFailures": [{"itemIdentifier": "sku:A-1"}, {"itemIdentifier": "sku:B-1"}]}
    assert log.sealed_checkpoints() == {}


def test_a_projector_fed_from_the_log_seals_nothing():
    """Entries a catch-up builds from the table (not stream records) are no evidence of an append."""
    from projections.batch import Entry

    log = InMemoryEventLog()
    log.append("sku:A", [adjust("A", 5)])
    projector(log).project([Entry(str(e.version), e.stream, e) for e in log.read_stream("sku:A")])
    assert log.sealed_checkpoints() == {}
