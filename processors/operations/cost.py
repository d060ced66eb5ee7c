"""What a million events cost on AWS, computed from template.yaml and a traffic mix. Pure arithmetic.

The template gives the shape: each table's global secondary indexes (and whether they project
every attribute), each function's memory, architecture and batch size. The traffic mix says what
the events are: which view row each one writes, what happens to each index entry of that row
(a GSI whose key changes costs two writes: the old entry deleted, the new one put), whether it
came in as its own HTTP request, what the reactor reads for it, which SQS requests it causes.
``dynafold cost`` prints it; the README's table is generated from it (a test keeps them equal).

Prices are us-east-1 list prices (on-demand, no free tier), from the pages named in PRICES.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.operations.template import resolve_conditions
from events.stream_catalogue import INDEX as STREAM_CATALOGUE_INDEX

PRICES_CHECKED = "2025-11"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


PRICES: dict[str, Price] = {
    # DynamoDB on-demand, after the 2024-11-01 reduction; storage and PITR per GB-month.
    "dynamodb_write_unit": Price(0.625e-6, "write request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_read_unit": Price(0.125e-6, "read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_storage_gb": Price(0.25, "GB-month", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_pitr_gb": Price(0.20, "GB-month", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    # Lambda arm64; since 2025-08-01 the INIT phase of on-demand functions is billed as duration.
    "lambda_arm64_gb_second": Price(0.0000133334, "GB-second", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_x86_gb_second": Price(0.0000166667, "GB-second", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_request": Price(0.20e-6, "request", "https://aws.amazon.com/lambda/pricing/"),
    "http_api_request": Price(1.00e-6, "request (first 300 M)", "https://aws.amazon.com/api-gateway/pricing/"),
    "sqs_request": Price(0.40e-6, "standard-queue request", "https://aws.amazon.com/sqs/pricing/"),
    # SSEEnabled without a key id = the AWS managed key aws/dynamodb: no key fee, requests billed.
    "kms_request": Price(0.03e-4, "request", "https://aws.amazon.com/kms/pricing/"),
    "logs_ingest_gb": Price(0.50, "GB ingested", "https://aws.amazon.com/cloudwatch/pricing/"),
    "xray_trace": Price(5.00e-6, "trace recorded", "https://aws.amazon.com/xray/pricing/"),
    "custom_metric": Price(0.30, "metric-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "alarm": Price(0.10, "standard alarm metric-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "dashboard": Price(3.00, "dashboard-month", "https://aws.amazon.com/cloudwatch/pricing/"),
}

# Write units an index entry costs when its row is written (items under 1 KB): a new entry, an
# update in place (ALL projection: the copy changes), a removal, and a key change (delete + put).
INDEX_EFFECTS = {"absent": 0, "insert": 1, "same": 1, "delete": 1, "move": 2}
SECONDS_PER_MONTH = 30 * 24 * 3600


@dataclass(frozen=True)
class EventClass:
    """One kind of event in the mix and everything one such event costs beyond its append."""

    name: str
    share: float  # of all events
    family: str  # the view family whose row it writes
    row: str  # "insert" or "update"
    index_effects: Mapping[str, str]  # GSI of that family -> INDEX_EFFECTS key
    idempotency_key: bool = True  # appended with a guard item, written just before the event
    via_http: bool = False  # arrived as its own HTTP API request (ingest)
    reactor_reads: float = 0.0  # read units the reactor spends on it
    sqs_sends: float = 0.0  # SendMessage: delivery jobs and delayed retries
    jobs_run: float = 0.0  # delivery jobs the worker runs for it (each: one receive share, one delete)
    new_stream: float = 0.0  # how often it is its stream's first event (enters the stream catalogue)


@dataclass(frozen=True)
class FunctionLoad:
    """An assumed invocation: fixed milliseconds plus milliseconds per record (measured locally)."""

    base_ms: float
    per_record_ms: float


@dataclass(frozen=True)
class Assumptions:
    mix: tuple[EventClass, ...]
    load: Mapping[str, FunctionLoad]  # function logical id -> load
    event_kb: float = 1.0  # stored event with its index entries
    checkpoint_kb: float = 0.25  # a sealed checkpoint, ~150 bytes + DynamoDB's 100 per item; at most one per event
    log_bytes_per_invocation: int = 1500  # Powertools lines + EMF + Lambda's START/END/REPORT
    access_log_bytes: int = 600  # the HTTP API's JSON access line
    cold_starts_per_function_per_day: float = 24.0
    init_seconds: float = 1.0  # INIT at 512 MB (benchmarks/cold_import.py, plus runtime start)
    kms_principals: int = 5  # function roles that open the encrypted tables
    sqs_idle_receives_per_month: float = 5 * 3 * 60 * 24 * 30  # 5 pollers, a 20 s long poll each
    custom_metrics: int = 55
    dashboards: int = 1


@dataclass(frozen=True)
class Shape:
    """What the template says: indexes per table family, and each function's memory and batch size."""

    indexes: Mapping[str, Mapping[str, bool]]  # family -> GSI name -> projects ALL attributes
    event_indexes: int  # the event table's indexes every event writes
    memory_mb: Mapping[str, int]
    arm64: Mapping[str, bool]
    batch_size: Mapping[str, int]
    tables: int
    alarms: int
    # Functions fed by an event source (traffic, schedule, queue): they cold-start every day. The
    # rest (the rebuild's, started by its state machine) run only during a rebuild.
    triggered: frozenset[str] = frozenset()
    # The event table's sparse stream catalogue index (events/stream_catalogue.py): only a stream's
    # first event has its key, so it is written per new stream, not per event.
    stream_catalogue: bool = False


def shape_from_template(template: Mapping[str, Any]) -> Shape:
    resources = template["Resources"]
    function_globals = template.get("Globals", {}).get("Function", {})
    indexes: dict[str, dict[str, bool]] = {}
    event_indexes = 0
    stream_catalogue = False
    tables = 0
    for resource in resources.values():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        tables += 1
        props = resolve_conditions(template, resource["Properties"])  # a deploy with the defaults
        family = _family(props["TableName"])
        gsis = props.get("GlobalSecondaryIndexes", [])
        if props.get("StreamSpecification"):
            stream_catalogue = any(g["IndexName"] == STREAM_CATALOGUE_INDEX for g in gsis)
            event_indexes = len(gsis) - stream_catalogue
        indexes[family] = {g["IndexName"]: g["Projection"]["ProjectionType"] == "ALL" for g in gsis}
    memory, arm64, batch = {}, {}, {}
    triggered = set()
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        memory[name] = int(props.get("MemorySize", function_globals.get("MemorySize", 128)))
        arm64[name] = "arm64" in props.get("Architectures", function_globals.get("Architectures", ["x86_64"]))
        sizes = [e["Properties"]["BatchSize"] for e in (props.get("Events") or {}).values()
                 if "BatchSize" in e.get("Properties", {})]
        batch[name] = int(sizes[0]) if sizes else 1
        if props.get("Events"):
            triggered.add(name)
    # CloudWatch charges per alarm *metric*: a metric math alarm is billed for each metric it reads.
    alarms = sum(max(1, sum(1 for m in r["Properties"].get("Metrics", ()) if "MetricStat" in m))
                 for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm")
    return Shape(indexes, event_indexes, memory, arm64, batch, tables, alarms, frozenset(triggered), stream_catalogue)


def _family(table_name: Any) -> str:
    """"${AWS::StackName}-delivery-status-v1" -> "delivery-status"; "-events" -> "events"."""
    text = getattr(table_name, "value", table_name)
    base = str(text).split("}-", 1)[-1]
    head, _, version = base.rpartition("-v")
    return head if head and version.isdigit() else base


@dataclass
class Line:
    item: str
    units: str
    usd: float


@dataclass
class Estimate:
    per_million_busy: list[Line] = field(default_factory=list)
    trickle_lambda: Line | None = None
    fixed_monthly: list[Line] = field(default_factory=list)
    storage_per_million_month: float = 0.0
    invocations_per_event: float = 0.0  # full batches
    invocations_per_event_trickle: float = 0.0

    def per_million(self, trickle: bool = False) -> float:
        lines = [line for line in self.per_million_busy
                 if not (trickle and self.trickle_lambda and line.item == "Lambda, full batches")]
        extra = self.trickle_lambda.usd if trickle and self.trickle_lambda else 0.0
        return sum(line.usd for line in lines) + extra

    def fixed(self) -> float:
        return sum(line.usd for line in self.fixed_monthly)

    def xray(self, events_per_second: float, trickle: bool = False) -> float:
        """Tracing: Active with the default sampling rule: the first request each second, then 5%
        (https://docs.aws.amazon.com/xray/latest/devguide/xray-console-sampling.html). It depends on
        the rate, not only on the events: at a trickle nearly every invocation is traced."""
        per_event = self.invocations_per_event_trickle if trickle else self.invocations_per_event
        rate = events_per_second * per_event
        traced_per_second = min(rate, 1.0) + 0.05 * max(rate - 1.0, 0.0)
        return traced_per_second * SECONDS_PER_MONTH * PRICES["xray_trace"].usd

    def monthly(self, events_per_second: float, trickle: bool = False) -> float:
        """A month at this rate: events, their storage for the month, X-Ray, the fixed items."""
        millions = events_per_second * SECONDS_PER_MONTH / 1e6
        return (millions * (self.per_million(trickle) + self.storage_per_million_month)
                + self.xray(events_per_second, trickle) + self.fixed())


def write_units(event: EventClass, shape: Shape) -> dict[str, float]:
    """Write request units one event costs, by where they go."""
    known = shape.indexes[event.family]
    unknown = set(event.index_effects) ^ set(known)
    if unknown:
        raise ValueError(f"{event.name}: index effects {sorted(event.index_effects)} != the template's "
                         f"{event.family} indexes {sorted(known)}")
    index_units = 0.0
    for index, effect in event.index_effects.items():
        units = INDEX_EFFECTS[effect]
        if effect == "same" and not known[index]:
            units = 0  # KEYS_ONLY/INCLUDE: an unchanged key leaves the entry alone
        index_units += units
    # A keyed append is two single-item conditional writes, its guard then its event, one unit each
    # under 1 KB (a transaction of both would cost two per item); without a key, the event alone.
    # The projector seals each stream it sees in a batch: at most one checkpoint per event (the view
    # row is counted the same way, without the coalescing a busy stream gets).
    append = 2.0 if event.idempotency_key else 1.0
    # A stream's first event also writes its keys-only entry in the stream catalogue: one unit per new stream.
    catalogue = event.new_stream if shape.stream_catalogue else 0.0
    return {"append": append, "event indexes": float(shape.event_indexes), "stream catalogue": catalogue,
            "checkpoint": 1.0, "view row": 1.0, "view indexes": index_units}


def read_units(event: EventClass) -> dict[str, float]:
    """The stream head (a strongly consistent query), the projector's row load, the reactor's reads."""
    return {"stream head": 1.0, "view row": 1.0, "reactor": event.reactor_reads}


def _weighted(mix: tuple[EventClass, ...], per_event: Any) -> float:
    return sum(event.share * per_event(event) for event in mix)


def _lambda_usd(shape: Shape, function: str, invocations: float, records: float, load: FunctionLoad) -> float:
    gb_seconds = shape.memory_mb[function] / 1024 * (invocations * load.base_ms + records * load.per_record_ms) / 1000
    price = PRICES["lambda_arm64_gb_second" if shape.arm64[function] else "lambda_x86_gb_second"].usd
    return gb_seconds * price + invocations * PRICES["lambda_request"].usd


def estimate(shape: Shape, assumptions: Assumptions) -> Estimate:
    mix = assumptions.mix
    if not math.isclose(sum(e.share for e in mix), 1.0, abs_tol=1e-9):
        raise ValueError(f"the mix's shares add up to {sum(e.share for e in mix)}, not 1")
    million = 1e6
    wcu = {key: _weighted(mix, lambda e, k=key: write_units(e, shape)[k]) for key in write_units(mix[0], shape)}
    rcu = {key: _weighted(mix, lambda e, k=key: read_units(e)[k]) for key in read_units(mix[0])}
    result = Estimate()
    total_w, total_r = sum(wcu.values()), sum(rcu.values())
    result.per_million_busy.append(Line(
        "DynamoDB writes", f"{total_w:.2f} WRU/event (" + ", ".join(f"{k} {v:.2f}" for k, v in wcu.items()) + ")",
        total_w * million * PRICES["dynamodb_write_unit"].usd))
    result.per_million_busy.append(Line(
        "DynamoDB reads", f"{total_r:.2f} RRU/event (" + ", ".join(f"{k} {v:.2f}" for k, v in rcu.items()) + ")",
        total_r * million * PRICES["dynamodb_read_unit"].usd))

    # Records each function handles per event; stream readers see every event.
    http = _weighted(mix, lambda e: float(e.via_http))
    jobs = _weighted(mix, lambda e: e.jobs_run)
    records = {"ProjectorFunction": 1.0, "ReactorFunction": 1.0, "IngestFunction": http, "DeliveryWorkerFunction": jobs}
    busy = trickle = 0.0
    for function, per_event in records.items():
        load = assumptions.load[function]
        n = per_event * million
        busy += _lambda_usd(shape, function, n / shape.batch_size[function], n, load)
        trickle += _lambda_usd(shape, function, n, n, load)
    result.per_million_busy.append(Line("Lambda, full batches", "projector, reactor, ingest, delivery worker", busy))
    result.trickle_lambda = Line("Lambda, one record per invocation", "every stream record invokes alone", trickle)
    result.per_million_busy.append(Line("HTTP API", f"{http:.2f} requests/event",
                                        http * million * PRICES["http_api_request"].usd))
    sends = _weighted(mix, lambda e: e.sqs_sends)
    # A job is received in a batch (one ReceiveMessage per batch) and deleted (one request per batch).
    sqs_requests = sends + 2 * jobs / shape.batch_size["DeliveryWorkerFunction"]
    result.per_million_busy.append(Line("SQS", f"{sqs_requests:.2f} requests/event (send, receive, delete)",
                                        sqs_requests * million * PRICES["sqs_request"].usd))
    invocations = sum(per_event / shape.batch_size[f] for f, per_event in records.items())
    result.invocations_per_event = invocations
    result.invocations_per_event_trickle = sum(records.values())
    log_gb = (invocations * assumptions.log_bytes_per_invocation + http * assumptions.access_log_bytes) * million / 1e9
    result.per_million_busy.append(Line("CloudWatch Logs", f"{log_gb:.2f} GB", log_gb * PRICES["logs_ingest_gb"].usd))

    gb = (assumptions.event_kb + assumptions.checkpoint_kb) * million / 1024 / 1024
    result.storage_per_million_month = gb * (PRICES["dynamodb_storage_gb"].usd + PRICES["dynamodb_pitr_gb"].usd)

    daily = [shape.memory_mb[name] for name in sorted(shape.triggered)] or list(shape.memory_mb.values())
    functions = len(daily)
    init_gb_s = (functions * assumptions.cold_starts_per_function_per_day * 30 * assumptions.init_seconds
                 * _mean(daily) / 1024)
    result.fixed_monthly += [
        Line("Lambda INIT (billed)", f"{functions} functions x {assumptions.cold_starts_per_function_per_day:g} "
             f"cold starts/day x {assumptions.init_seconds:g} s", init_gb_s * PRICES["lambda_arm64_gb_second"].usd),
        # DynamoDB caches a table key per principal for 5 minutes: at most 12 Decrypts an hour each.
        Line("KMS (SSE, AWS managed key)", f"{shape.tables} tables x {assumptions.kms_principals} roles x 12/h",
             shape.tables * assumptions.kms_principals * 12 * 24 * 30 * PRICES["kms_request"].usd),
        Line("SQS long polling by Lambda", f"{assumptions.sqs_idle_receives_per_month:,.0f} receives",
             assumptions.sqs_idle_receives_per_month * PRICES["sqs_request"].usd),
        Line("Error monitor (every 5 min)", "8,640 invocations",
             _lambda_usd(shape, "ErrorMonitorFunction", 8640, 0, assumptions.load["ErrorMonitorFunction"])),
        Line("Custom metrics", f"{assumptions.custom_metrics} series",
             assumptions.custom_metrics * PRICES["custom_metric"].usd),
        Line("Alarms", f"{shape.alarms} alarm metrics", shape.alarms * PRICES["alarm"].usd),
        Line("Dashboard", f"{assumptions.dashboards}", assumptions.dashboards * PRICES["dashboard"].usd),
    ]
    return result


def _mean(values: Any) -> float:
    listed = list(values)
    return sum(listed) / len(listed)


# The seeds' traffic, webhook-fed, in steady state: every kind of event the log holds, derived
# ones included (the reactor's broadcasts and alerts, the worker's delivery outcomes).
DEFAULT_MIX = (
    # by-order-number: an order's first validation inserts its order row's entry (keys only), later
    # ones leave it; counted as an insert every time, the worst case of one validation per order
    # (so is the order stream's creation: its first event enters the stream catalogue).
    EventClass("InFlow order validated", 0.20, "pending-errors", "update",
               {"by-first-detected": "same", "by-order-number": "insert"}, via_http=True, new_stream=1.0),
    EventClass("Shopify stock change", 0.30, "inventory", "update", {}, via_http=True, reactor_reads=2.0),
    EventClass("stock broadcast (reactor)", 0.10, "inventory", "update", {}, sqs_sends=1.0),
    EventClass("message received (POST /messages)", 0.10, "delivery-status", "insert",
               {"by-message": "insert", "by-status": "insert", "by-sender": "insert"}, via_http=True, sqs_sends=1.0,
               new_stream=1.0),
    # attempted + succeeded / retry scheduled: two events per job; a retry moves by-status
    # (status, due_at) and by-sender (updated_at): two index entries, two writes each.
    EventClass("delivery attempt outcome (worker)", 0.25, "delivery-status", "update",
               {"by-message": "same", "by-status": "move", "by-sender": "move"}, jobs_run=0.5, sqs_sends=0.1),
    EventClass("alert raised (reactor)", 0.05, "alerts", "insert",
               {"by-unread": "insert", "by-severity": "insert", "by-sku": "insert"}, new_stream=1.0),
)

DEFAULT_LOAD = {
    "ProjectorFunction": FunctionLoad(base_ms=40, per_record_ms=3),
    "ReactorFunction": FunctionLoad(base_ms=30, per_record_ms=6),
    "IngestFunction": FunctionLoad(base_ms=60, per_record_ms=40),
    "DeliveryWorkerFunction": FunctionLoad(base_ms=20, per_record_ms=250),
    "ErrorMonitorFunction": FunctionLoad(base_ms=300, per_record_ms=0),
}

DEFAULT_ASSUMPTIONS = Assumptions(mix=DEFAULT_MIX, load=DEFAULT_LOAD)


def as_dict(result: Estimate, events_per_second: float) -> dict[str, Any]:
    return {
        "per_million_events": {line.item: {"units": line.units, "usd": round(line.usd, 4)}
                               for line in result.per_million_busy},
        "per_million_events_trickle_lambda": round(result.trickle_lambda.usd, 4) if result.trickle_lambda else None,
        "total_per_million_busy": round(result.per_million(), 4),
        "total_per_million_trickle": round(result.per_million(trickle=True), 4),
        "storage_per_million_events_month": round(result.storage_per_million_month, 4),
        "fixed_monthly": {line.item: {"units": line.units, "usd": round(line.usd, 4)} for line in result.fixed_monthly},
        "events_per_second": events_per_second,
        "xray_monthly_busy": round(result.xray(events_per_second), 2),
        "monthly_busy": round(result.monthly(events_per_second), 2),
        "monthly_trickle": round(result.monthly(events_per_second, trickle=True), 2),
        "prices_checked": PRICES_CHECKED,
    }


def markdown(result: Estimate, rates: tuple[float, ...] = (1.0, 10.0)) -> str:
    """The README's table."""
    rows = ["| per million events | what | cost |", "|---|---|---|"]
    rows += [f"| {line.item} | {line.units} | ${line.usd:.2f} |" for line in result.per_million_busy]
    if result.trickle_lambda:
        rows.append(f"| {result.trickle_lambda.item} (instead of full batches) | {result.trickle_lambda.units} "
                    f"| ${result.trickle_lambda.usd:.2f} |")
    rows.append(f"| **total, busy** (at a trickle) | | **${result.per_million():.2f}** "
                f"(${result.per_million(trickle=True):.2f}) |")
    rows.append(f"| storage, each month the events are kept | event + index entries + checkpoint, PITR | "
                f"${result.storage_per_million_month:.2f} |")
    rows += ["", "| fixed, per month | what | cost |", "|---|---|---|"]
    rows += [f"| {line.item} | {line.units} | ${line.usd:.2f} |" for line in result.fixed_monthly]
    rows.append(f"| **total fixed** | | **${result.fixed():.2f}** |")
    rows += ["", "| a month at | busy | trickle | of which X-Ray (busy, trickle) |", "|---|---|---|---|"]
    rows += [f"| {rate:g} event/s ({rate * SECONDS_PER_MONTH / 1e6:.1f} M events) | ${result.monthly(rate):.2f} "
             f"| ${result.monthly(rate, trickle=True):.2f} | ${result.xray(rate):.2f}, "
             f"${result.xray(rate, trickle=True):.2f} |" for rate in rates]
    return "\n".join(rows)
