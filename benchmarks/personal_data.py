"""What sealing personal values costs (issue 22): appends and projection with encryption on and off,
and KMS calls per 1,000 events with keys cached per invocation.

On DynamoDB Local with the keys table; the local stand-in for KMS counts what would be KMS calls
(GenerateDataKey for a subject's first value, Decrypt for each key an invocation loads). Printed,
never asserted: the figures depend on how many subjects an invocation's events belong to.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import engine, fresh, interleaved_medians, report
from events.envelope import NewEvent
from events.keyring import KeyRing
from events.sealing import Revealer, PersonalDataLog
from events.store import EventStore
from processors.adapters.subject_keys import DynamoDbSubjectKeys, LocalKeyWrapper
from processors.local.tables import local_tables
from projections.batch import BatchProjector, Entry
from projections.registry import VIEWS
from projections.view_store import ViewStore

RUNS = 200
EVENTS = 1000
BATCH = 100  # the projector's BatchSize: one invocation, one key cache


def _message(i: int, senders: int) -> tuple[str, NewEvent]:
    sender = f"sender{i % senders}"
    return f"delivery:{sender}:m{i}", NewEvent("dynafold.delivery.message_received.v1", {
        "sender_id": sender, "message_id": f"m{i}", "target_url": "https://hooks.example.com/h",
        "payload": {"customer": f"Customer {i}", "email": f"c{i}@example.com", "items": [1, 2, 3]}})


def _order(i: int, customers: int) -> tuple[str, NewEvent]:
    return f"order:o{i}", NewEvent("dynafold.orders.validated.v1", {
        "order_id": f"o{i}", "order_number": f"SO-{i}", "customer_id": f"C{i % customers}",
        "errors": [{"error_hash": "h1", "rule": "discount_remark", "message": "Discounted order has no remark"}],
        "order": {"order_id": f"o{i}", "remarks": f"approved by person {i}", "lines": [{"sku": "TUK-1"}]}})


def run(endpoint_url: str, runs: int = RUNS) -> dict[str, float]:
    bench = fresh(endpoint_url)
    plain = EventStore.over(bench.client, bench.names)
    wrapper = LocalKeyWrapper(Path(tempfile.mkdtemp()) / "kms-stand-in.key")
    ring = KeyRing(DynamoDbSubjectKeys(bench.client, bench.names["keys"], wrapper))
    sealed = PersonalDataLog(plain, Revealer(ring))
    result: dict[str, float] = {}

    # Appends: a message of one of 10 senders, plain and sealed (keys warm: one invocation of many).
    for i in range(100):
        stream, event = _message(10_000_000 + i, 10)
        sealed.append(stream, [event], expected_version=0)

    def append_plain(i: int) -> None:
        stream, event = _message(i, 10)
        plain.append(stream + "p", [event], expected_version=0)

    def append_sealed(i: int) -> None:
        stream, event = _message(i, 10)
        sealed.append(stream + "s", [event], expected_version=0)

    off, on = interleaved_medians([append_plain, append_sealed], [runs, runs])
    result.update(append_plain_ms=off * 1e3, append_sealed_ms=on * 1e3, append_ratio=on / off)

    # KMS calls per 1,000 events appended, one invocation per 100 events (the cache's life).
    for label, make, spread in (("10 senders", _message, 10), ("1,000 customers", _order, EVENTS)):
        before = wrapper.calls
        for start in range(0, EVENTS, BATCH):
            ring.begin_invocation()
            for i in range(start, start + BATCH):
                stream, event = make(20_000_000 + i, spread)
                sealed.append(stream + label[:2], [event], expected_version=0)
        result[f"kms_append_{label}"] = (wrapper.calls - before) * 1000 / EVENTS

    # Projection of 1,000 order events (the view keeps personal values), plain and revealed, in
    # alternating rounds on fresh streams (a stream's rows are written once).
    tables = local_tables("bench-", versions={})
    rounds = ("plain0", "sealed0", "plain1", "sealed1", "plain2", "sealed2")
    for kind in rounds:
        log = sealed if kind.startswith("sealed") else plain
        for i in range(EVENTS):
            stream, event = _order(i, 50)
            log.append(f"{stream}-{kind}", [event], expected_version=0)

    def project(kind: str) -> float:
        reveal = kind.startswith("sealed")
        views = ViewStore(bench.client, tables.views)
        projector = BatchProjector(views, sealed.read_stream, VIEWS, reveal=sealed.revealer.reveal if reveal else None)
        entries = [Entry(str(i), f"order:o{i}-{kind}", plain.read_stream(f"order:o{i}-{kind}")[0])
                   for i in range(EVENTS)]
        before = wrapper.calls
        started = time.perf_counter()
        for start in range(0, EVENTS, BATCH):
            ring.begin_invocation()
            projector.project(entries[start:start + BATCH])
        elapsed = time.perf_counter() - started
        if reveal:
            result["kms_project_sealed"] = (wrapper.calls - before) * 1000 / EVENTS
        return EVENTS / elapsed

    rates = {kind: project(kind) for kind in rounds}
    # The Python a personal value costs, with no engine: sealing and revealing one order event's
    # value with its key cached (CPU time, so a loaded machine does not inflate it).
    stored = [sealed.log.read_stream(f"order:o{i}-sealed0")[0] for i in range(EVENTS)]
    fresh_orders = [_order(i, 50) for i in range(EVENTS)]
    ring.begin_invocation()
    sealed.revealer.reveal(stored[0])
    started = time.process_time()
    for recorded in stored:
        sealed.revealer.reveal(recorded)
    result["reveal_us"] = (time.process_time() - started) / EVENTS * 1e6
    for stream, new in fresh_orders[:50]:
        sealed.revealer.seal_event(stream, new)  # each subject's key and stream noted once
    started = time.process_time()
    for index in range(EVENTS):  # streams already noted: the crypto and the model, no keys-table write
        stream, new = fresh_orders[index % 50]
        sealed.revealer.seal_event(stream, new)
    result["seal_us"] = (time.process_time() - started) / EVENTS * 1e6
    plain_rate = max(rate for kind, rate in rates.items() if kind.startswith("plain"))
    sealed_rate = max(rate for kind, rate in rates.items() if kind.startswith("sealed"))
    result.update(project_plain_eps=plain_rate, project_sealed_eps=sealed_rate,
                  project_ratio=plain_rate / sealed_rate)
    report("personal data (DynamoDB Local; KMS = the local stand-in's calls)", [
        ("append, message without sealing", f"{result['append_plain_ms']:.2f} ms"),
        ("append, message sealed (key cached)", f"{result['append_sealed_ms']:.2f} ms"),
        ("sealed / plain append", f"{result['append_ratio']:.2f}x"),
        ("KMS calls per 1,000 appends, 10 senders", f"{result['kms_append_10 senders']:.0f}"),
        ("KMS calls per 1,000 appends, 1,000 customers", f"{result['kms_append_1,000 customers']:.0f}"),
        ("projection, 1,000 orders, plain", f"{result['project_plain_eps']:.0f} events/s"),
        ("projection, 1,000 orders, revealed", f"{result['project_sealed_eps']:.0f} events/s"),
        ("revealed / plain projection time", f"{result['project_ratio']:.2f}x   (best of 3 alternating rounds each)"),
        ("KMS calls per 1,000 projected, 50 customers", f"{result['kms_project_sealed']:.0f}"),
        ("CPU to seal one order's value (key cached)", f"{result['seal_us']:.0f} us"),
        ("CPU to reveal one order's value (key cached)", f"{result['reveal_us']:.0f} us"),
    ])
    return result


if __name__ == "__main__":
    with engine(None) as url:
        run(url)
