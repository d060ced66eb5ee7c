"""Hot keys and the live path at a rate, on paper: what `dynafold cost --rate R` adds to the cost. Pure.

**Per-key limits.** DynamoDB serves one partition key value at most 1,000 write units and 3,000 read
units a second, in a table as in a global secondary index ("each individual partition is limited to
1000 write units per second and 3000 read units per second",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html; one
key value cannot be split across partitions for its writes when its sort key only grows, as a time
does), and an index throttled for writes throttles its table's writes
(https://repost.aws/knowledge-center/dynamodb-gsi-throttling-table). For every table and index of
template.yaml this finds the key value that takes the most at R events/s of the cost model's traffic
mix (processors/operations/cost.py ``DEFAULT_MIX``), from what each kind of event writes where:

- its item under its stream in the event table (1 write unit: one conditional put, events/appending.py;
  an append of several events is a transaction at 2 units per item, which the mix, like the cost
  model, does not count), its entry under its type in ``by-type-shard-time``, under its request in
  ``by-correlation`` and under its own id in ``by-id`` (1 unit each, key-only entries under 1 KB);
  the idempotency guard under its own key, written once (1 unit: a single put before the event);
  the stream's sealed checkpoint under its stream in the checkpoint table (at most one per event,
  events/checkpoints.py);
- its view row under its own key (1 unit) and the row's index entries under the values ``TRAFFIC``
  names (a moved entry costs its old value a delete and its new value a put, ``cost.INDEX_EFFECTS``);
- reads: the stream head and the view row it loads (strongly consistent), the reactor's reads, and
  on every index value one 1 MB page of queries a second (eventually consistent: 128 units).

A key with many values (a SKU, an order, a delivery) is charged ``hot_entity_share`` of every kind of
event that writes it, all on one value: the busiest SKU of each kind at once. A key with few values
(an event type, a status, ``UNREAD``) is charged all of them, divided by its buckets when the code
declares it sharded (events/sharding.py: a CRC-32 of each item's key spreads many items evenly).

**Stream shards.** DynamoDB Streams keeps a shard per partition of the table (a partition split
closes its shard and opens two, DynamoDB's developer guide, "DynamoDB Streams": shards "are created
and deleted automatically"). A partition takes 1,000 write and 3,000 read units a second, so the
event table at R events/s has at least ceil(writes / 1,000 + reads / 3,000) partitions (the sizing
rule of https://github.com/awsdocs/amazon-dynamodb-developer-guide, "Understand Partition
Behavior"); more when its data outgrows 10 GB a partition or DynamoDB splits for heat, which only
lowers the events a shard carries. Streams spread over the partitions by a hash of the stream id, so
a shard carries R / shards events a second, every one of which the projector and the reactor read.

**Consumers.** A shard is read by at most ParallelizationFactor concurrent batches of each function
(Lambda: "the number of concurrent batches that Lambda polls from a shard", with-ddb.html), so a
function keeps up with a shard when factor x batch size / (its measured time per batch) is at least
the shard's events a second. The batch times are `make bench`'s (processors/operations/measured.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.operations.cost import DEFAULT_ASSUMPTIONS, Assumptions, read_units
from processors.operations.measured import BATCH_TIMES
from processors.operations.template import Tag, load_template, resolve_conditions

WRITE_UNITS_PER_KEY = 1_000  # per second, per partition key value (see the module's sources)
READ_UNITS_PER_KEY = 3_000
QUERY_PAGE_READ_UNITS = 1024 / 4 / 2  # one 1 MB Query page, eventually consistent: 128 units
ENTITY = "<busiest one>"  # a key with many values: its busiest value
ONCE = "<each once>"  # a key each write takes a new value of (idempotency keys, event ids)
STREAM_READERS = ("ProjectorFunction", "ReactorFunction")
EVENT_ITEM_UNITS = 1.0  # one event, one conditional PutItem of 1 KB (cost.write_units' "append")
GUARD_UNITS = 1.0  # an idempotency guard: one conditional PutItem, before its event
CHECKPOINT_UNITS = 1.0  # a sealed checkpoint (cost.Assumptions.checkpoint_kb: under 1 KB)
_TYPE_KEYS = {"type", "type_shard"}  # event-table index keys holding the event type
_UNIQUE_KEYS = {"id"}  # event-table index keys each event has its own value of (by-id)


@dataclass(frozen=True)
class Traffic:
    """What the key model needs about one kind of event beyond ``cost.EventClass``: the stored types
    its events have (share of the kind's events), and for each low-cardinality index of its view the
    value its row's entry leaves and the value it enters (None: none; absent: a value of many)."""

    types: Mapping[str, float]
    index_values: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)


# The seeds' kinds of event (cost.DEFAULT_MIX, by name). Where a kind could go several ways the
# hotter one is taken: every Shopify stock change one type, every delivery outcome a move from
# PENDING to SUCCESS, every message and outcome from one sender (the storefront broadcaster sends all
# broadcasts: projections/reactor/rules/broadcast.py), every alert one severity.
SENDER = "<one sender>"
TRAFFIC: dict[str, Traffic] = {
    "InFlow order validated": Traffic({"dynafold.orders.validated.v1": 1.0},
                                      {"by-first-detected": ("PENDING", "PENDING")}),
    "Shopify stock change": Traffic({"dynafold.inventory.stock_adjusted.v2": 1.0}),
    "stock broadcast (reactor)": Traffic({"dynafold.inventory.stock_broadcast.v1": 1.0}),
    "message received (POST /messages)": Traffic(
        {"dynafold.delivery.message_received.v1": 1.0},
        {"by-status": (None, "PENDING"), "by-sender": (None, SENDER)}),
    "delivery attempt outcome (worker)": Traffic(
        {"dynafold.delivery.attempted.v1": 0.5, "dynafold.delivery.succeeded.v1": 0.5},
        {"by-status": ("PENDING", "SUCCESS"), "by-sender": (SENDER, SENDER)}),
    "alert raised (reactor)": Traffic({"dynafold.alerts.raised.v1": 1.0},
                                      {"by-unread": (None, "UNREAD"), "by-severity": (None, "warning")}),
}


@dataclass(frozen=True)
class KeyLoad:
    """The hottest partition key value of one table or index, in units a second."""

    table: str  # table family ("events", "delivery-status")
    index: str | None  # None: the table itself
    key: str  # the key attribute
    value: str  # the hottest value (ENTITY: the busiest of many; a named value: each of its buckets)
    buckets: int  # 1 unless the key is sharded
    write_units: float
    read_units: float

    @property
    def write_share(self) -> float:
        return self.write_units / WRITE_UNITS_PER_KEY

    @property
    def read_share(self) -> float:
        return self.read_units / READ_UNITS_PER_KEY

    @property
    def over(self) -> bool:
        return self.write_units > WRITE_UNITS_PER_KEY or self.read_units > READ_UNITS_PER_KEY


@dataclass(frozen=True)
class Consumer:
    function: str
    batch_size: int
    ms_per_batch: float
    measured: str
    factor: int  # the template's ParallelizationFactor
    events_per_shard: float

    @property
    def capacity(self) -> float:
        """Events a second one shard's concurrent batches take."""
        return self.factor * self.batch_size / (self.ms_per_batch / 1000)

    @property
    def factor_needed(self) -> int:
        return max(1, math.ceil(self.events_per_shard * self.ms_per_batch / 1000 / self.batch_size))

    @property
    def keeps_up(self) -> bool:
        return self.capacity >= self.events_per_shard


@dataclass(frozen=True)
class LivePath:
    rate: float
    keys: list[KeyLoad]
    event_table_write_units: float
    event_table_read_units: float
    shards: int
    consumers: list[Consumer]
    hot_entity_share: float

    @property
    def events_per_shard(self) -> float:
        return self.rate / self.shards

    @property
    def over(self) -> list[KeyLoad]:
        return [load for load in self.keys if load.over]


# ----------------------------------------------------------------------------- the template's shape


@dataclass(frozen=True)
class _Index:
    family: str
    name: str | None  # None: the table
    key: str  # partition key attribute
    projects_all: bool


def _family(table_name: Any) -> str:
    """"${AWS::StackName}-delivery-status-v2" -> "delivery-status"; "...-events" -> "events"."""
    base = str(getattr(table_name, "value", table_name)).split("}-", 1)[-1]
    head, _, version = base.rpartition("-v")
    return head if head and version.isdigit() else base


def _indexes(template: Mapping[str, Any]) -> list[_Index]:
    found = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resolve_conditions(template, resource["Properties"])
        family = _family(props["TableName"])
        found.append(_Index(family, None, _hash(props["KeySchema"]), True))
        for gsi in props.get("GlobalSecondaryIndexes", []):
            found.append(_Index(family, gsi["IndexName"], _hash(gsi["KeySchema"]),
                                gsi["Projection"]["ProjectionType"] == "ALL"))
    return found


def _hash(schema: list[Mapping[str, str]]) -> str:
    return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")


def sharded_buckets() -> dict[tuple[str, str], int]:
    """(family, index) -> buckets of every write-sharded key the code declares."""
    from events.items import TYPE_INDEX
    from projections.registry import UNITS

    buckets = {("events", TYPE_INDEX.index): TYPE_INDEX.buckets}
    for unit in UNITS:
        for key in unit.row.sharded:
            buckets[(unit.view.table, key.index)] = key.buckets
    return buckets


def _stream_settings(template: Mapping[str, Any], function: str) -> tuple[int, int]:
    """(BatchSize, ParallelizationFactor) of a stream reader, parameters at their defaults."""
    [props] = [e["Properties"] for e in template["Resources"][function]["Properties"]["Events"].values()
               if e["Type"] == "DynamoDB"]

    def literal(value: Any) -> int:
        if isinstance(value, Tag) and value.name == "Ref":
            return int(template["Parameters"][value.value]["Default"])
        return int(value)

    return literal(props.get("BatchSize", 100)), literal(props.get("ParallelizationFactor", 1))


# ----------------------------------------------------------------------------- the analysis


def analyse(rate: float, template: Mapping[str, Any] | None = None,
            assumptions: Assumptions = DEFAULT_ASSUMPTIONS, traffic: Mapping[str, Traffic] | None = None,
            measured: Mapping[str, float] | None = None, hot_entity_share: float = 0.01,
            buckets: Mapping[tuple[str, str], int] | None = None) -> LivePath:
    """The live path at ``rate`` events/s. ``measured``: function -> ms per batch, instead of the
    recorded figures (the benchmark's own); ``buckets``: instead of the code's declarations."""
    template = template if template is not None else load_template()
    traffic = traffic if traffic is not None else TRAFFIC
    buckets = buckets if buckets is not None else sharded_buckets()
    missing = [event.name for event in assumptions.mix if event.name not in traffic]
    if missing:
        raise ValueError(f"no key traffic for {missing}: add them to partitions.TRAFFIC")
    indexes = _indexes(template)
    writes: dict[tuple[str, str | None], dict[str, float]] = {}
    reads: dict[tuple[str, str | None], dict[str, float]] = {}

    def charge(to: dict[tuple[str, str | None], dict[str, float]], index: _Index, value: str | None,
               units: float) -> None:
        if value is None or not units:
            return
        per_value = to.setdefault((index.family, index.name), {})
        # A key written once takes one write's units, whatever the kinds of event; any other adds up.
        per_value[value] = max(per_value.get(value, 0.0), units) if value == ONCE else per_value.get(value, 0.0) + units

    for event in assumptions.mix:
        per_second = rate * event.share
        entity = per_second * hot_entity_share
        model = traffic[event.name]
        for index in indexes:
            if index.family == "events":
                if index.name is None:
                    charge(writes, index, ENTITY, entity * EVENT_ITEM_UNITS)
                    charge(reads, index, ENTITY, entity * read_units(event)["stream head"])
                elif index.key in _TYPE_KEYS:
                    for event_type, share in model.types.items():
                        charge(writes, index, event_type, per_second * share)
                elif index.key in _UNIQUE_KEYS:
                    charge(writes, index, ONCE, 1.0)
                else:
                    charge(writes, index, ENTITY, entity)
            elif index.family == "idempotency":
                if event.idempotency_key:
                    charge(writes, index, ONCE, GUARD_UNITS)  # one put of each key, ever
            elif index.family == "checkpoints":
                if index.name is None:  # the projector seals the stream it saw: its busiest one
                    charge(writes, index, ENTITY, entity * CHECKPOINT_UNITS)
            elif index.family == event.family:
                if index.name is None:
                    charge(writes, index, ENTITY, entity)
                    charge(reads, index, ENTITY, entity * read_units(event)["view row"])
                    continue
                effect = event.index_effects.get(index.name, "absent")
                left, entered = model.index_values.get(index.name, (ENTITY, ENTITY))
                rows = per_second if entered != ENTITY else entity
                if effect in ("insert", "move") or (effect == "same" and index.projects_all):
                    charge(writes, index, entered, rows)
                if effect in ("delete", "move"):
                    charge(writes, index, left, per_second if left != ENTITY else entity)
            elif index.family == "inventory" and index.name is None and event.reactor_reads:
                charge(reads, index, ENTITY, entity * event.reactor_reads)

    loads = [_hottest(index, writes.get((index.family, index.name), {}),
                      reads.get((index.family, index.name), {}), buckets) for index in indexes]
    events_writes = sum(rate * e.share * EVENT_ITEM_UNITS for e in assumptions.mix)
    events_reads = sum(rate * e.share * read_units(e)["stream head"] for e in assumptions.mix)
    shards = max(1, math.ceil(events_writes / WRITE_UNITS_PER_KEY + events_reads / READ_UNITS_PER_KEY))
    consumers = []
    for function in STREAM_READERS:
        batch_size, factor = _stream_settings(template, function)
        recorded = BATCH_TIMES[function]
        if recorded.batch_size != batch_size and measured is None:
            raise ValueError(f"{function}: measured with batches of {recorded.batch_size}, the template "
                             f"has {batch_size}: run `python -m benchmarks projector` again")
        ms = measured[function] if measured is not None else recorded.ms_per_batch
        consumers.append(Consumer(function, batch_size, ms, "this run" if measured is not None else recorded.measured,
                                  factor, rate / shards))
    return LivePath(rate, loads, events_writes, events_reads, shards, consumers, hot_entity_share)


def _hottest(index: _Index, writes: Mapping[str, float], reads: Mapping[str, float],
             buckets: Mapping[tuple[str, str], int]) -> KeyLoad:
    """The value of an index that takes the largest share of a limit, each bucket of a sharded one
    taking its part of a named value (never of the busiest entity's: one item is in one bucket).
    Every value also gets a page of queries a second."""
    spread = buckets.get((index.family, index.name), 1) if index.name is not None else 1
    loads = []
    for value in sorted(set(writes) | set(reads) | {ENTITY}):
        parts = 1 if value in (ENTITY, ONCE) else spread
        loads.append(KeyLoad(index.family, index.name, index.key, value, parts, writes.get(value, 0.0) / parts,
                             reads.get(value, 0.0) / parts + (QUERY_PAGE_READ_UNITS if index.name else 0.0)))
    return max(loads, key=lambda load: max(load.write_share, load.read_share))  # the first of equals


def live_path_at(rate: float, measured: Mapping[str, float] | None = None) -> LivePath:
    """The template's live path at ``rate`` (the benchmark's figures when given)."""
    return analyse(rate, measured=measured)


# ----------------------------------------------------------------------------- output


def as_dict(path: LivePath) -> dict[str, Any]:
    return {
        "events_per_second": path.rate,
        "limits": {"write_units_per_key": WRITE_UNITS_PER_KEY, "read_units_per_key": READ_UNITS_PER_KEY},
        "hot_entity_share": path.hot_entity_share,
        "keys": [{"table": k.table, "index": k.index, "key": k.key, "value": k.value, "buckets": k.buckets,
                  "write_units_per_second": round(k.write_units, 1), "read_units_per_second": round(k.read_units, 1),
                  "write_share": round(k.write_share, 3), "read_share": round(k.read_share, 3), "over": k.over}
                 for k in path.keys],
        "over": [f"{k.table}/{k.index or 'table'}" for k in path.over],
        "event_table": {"write_units_per_second": round(path.event_table_write_units, 1),
                        "read_units_per_second": round(path.event_table_read_units, 1),
                        "stream_shards": path.shards, "events_per_shard": round(path.events_per_shard, 1)},
        "consumers": [{"function": c.function, "batch_size": c.batch_size, "ms_per_batch": c.ms_per_batch,
                       "measured": c.measured, "parallelization_factor": c.factor,
                       "events_per_second_per_shard": round(c.capacity, 1), "factor_needed": c.factor_needed,
                       "keeps_up": c.keeps_up} for c in path.consumers],
    }


def _where(load: KeyLoad) -> str:
    return f"{load.table} {load.index or '(table)'}"


def _value(load: KeyLoad) -> str:
    return load.value if load.buckets == 1 else f"{load.value} (each of {load.buckets} buckets)"


def markdown(path: LivePath) -> str:
    """The README's table: every table and index, its hottest key value, against the limits."""
    rows = [f"| at {path.rate:,.0f} events/s | key | hottest value | write units/s | read units/s |",
            "|---|---|---|---|---|"]
    for load in path.keys:
        flag = " **over**" if load.over else ""
        rows.append(f"| {_where(load)} | {load.key} | {_value(load)} | {load.write_units:,.0f} "
                    f"({load.write_share:.0%} of {WRITE_UNITS_PER_KEY:,}){flag} | {load.read_units:,.0f} "
                    f"({load.read_share:.0%} of {READ_UNITS_PER_KEY:,}) |")
    rows += ["", "| the live path | figure |", "|---|---|",
             f"| event table | {path.event_table_write_units:,.0f} write units/s, "
             f"{path.event_table_read_units:,.0f} read units/s |",
             f"| stream shards (at least) | {path.shards} (ceil(writes / 1,000 + reads / 3,000)): "
             f"{path.events_per_shard:,.0f} events/s each |"]
    for consumer in path.consumers:
        rows.append(f"| {consumer.function} | {consumer.ms_per_batch:,.0f} ms per batch of {consumer.batch_size} "
                    f"({consumer.measured}): {consumer.capacity:,.0f} events/s per shard at ParallelizationFactor "
                    f"{consumer.factor} = {consumer.capacity / consumer.events_per_shard:.2f}x the shard's; "
                    f"needs {consumer.factor_needed} |")
    return "\n".join(rows)
