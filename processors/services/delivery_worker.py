"""The delivery worker Lambda (SQS-fed): makes one webhook attempt per job and records its outcome.

For each job (a delivery stream and the attempt to make) the worker reads the stream, the
authoritative state, and folds it with the delivery-status fold. A duplicate, stale or finished
job changes nothing; an early one is re-enqueued for the time left. Otherwise it checks the
target (SSRF guard; a refused or disabled target dead-letters without a request), POSTs the
signed payload to the checked address, and appends what ``events.delivery_policy`` decided,
conditionally on the version it read and under a key per (delivery, attempt): two workers
racing on one job record one attempt.

Follow-ups (next attempt, dead-letter queue, disabling a target that answered 410) are the
reactor's, driven by the events appended here (``processors/delivery_dispatch.py``).
"""

from __future__ import annotations

import os
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from aws_lambda_powertools import Metrics

from events.deliveries import MessageReceived
from events.delivery_policy import (
    Decision,
    Defer,
    HttpOutcome,
    RandomFraction,
    RetryPolicy,
    Skip,
    decide_attempt,
    decide_refusal,
    disabled_by,
    plan_job,
    target_stream,
)
from events.envelope import RecordedEvent, canonical_json, parse_time
from events.personal import revealed
from events.errors import IdempotencyKeyReused, VersionConflict
from events.ports import EventLog
from processors.telemetry.logs import make_logger
from processors.adapters import webhook_http
from processors.adapters.clock import SYSTEM_CLOCK, Clock
from processors.adapters.delivery_queue import DeliveryJob, DeliveryQueue, InvalidDeliveryJob
from processors.adapters.outbound import Resolver, TargetPolicy, TargetRefused, check_target, system_resolver
from processors.adapters.secrets import Secrets
from processors.adapters.webhook_signing import signed_headers, signing_key
from projections.delivery_status import RETRY_SCHEDULED, DeliveryStatus, DeliveryStatusProjection
from projections.view import stream_key

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")
SOURCE = "urn:dynafold:delivery-worker"
SERVICE = "delivery-worker"
DEFAULT_TIMEOUT_SECONDS = 10.0
# After its POST a job reads the delivery stream and appends the outcome (a transaction, maybe a
# re-enqueue): a generous bound on that, so a job's worst case is its request deadline plus this.
APPEND_MARGIN_SECONDS = 5.0
logger = make_logger(SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

Send = Callable[..., HttpOutcome]  # webhook_http.post's signature


@dataclass(frozen=True)
class DeliverySettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    targets: TargetPolicy = field(default_factory=TargetPolicy)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    signing_secret: str | None = field(default=None, repr=False)

    @property
    def job_budget_seconds(self) -> float:
        """The longest one job can take: the request's overall deadline, then the appends."""
        return self.timeout_seconds + APPEND_MARGIN_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str], secrets: Secrets | None = None) -> "DeliverySettings":
        """DYNAFOLD_MAX_RETRIES, _RETRY_BASE_SECONDS, _RETRY_CAP_SECONDS, _DELIVERY_TIMEOUT_SECONDS,
        _ALLOW_TARGETS, _ALLOW_HTTP and DYNAFOLD_SIGNING_SECRET (checked when a request is signed)."""
        text = env.get("DYNAFOLD_DELIVERY_TIMEOUT_SECONDS", "").strip()
        try:
            timeout = float(text) if text else DEFAULT_TIMEOUT_SECONDS
        except ValueError:
            raise ValueError(f"DYNAFOLD_DELIVERY_TIMEOUT_SECONDS must be a number of seconds, not {text!r}") from None
        if not 0 < timeout <= 900:
            raise ValueError(f"DYNAFOLD_DELIVERY_TIMEOUT_SECONDS must be in (0, 900], not {timeout}")
        # The value itself locally, or DYNAFOLD_SIGNING_SECRET_PARAM naming an SSM SecureString on AWS.
        return cls(RetryPolicy.from_env(env), TargetPolicy.from_env(env), timeout,
                   (secrets or Secrets(env)).get("signing"))


@dataclass(frozen=True)
class JobResult:
    """What a job did. ``recorded`` is False for skipped, deferred and lost-race jobs."""

    outcome: Literal["skipped", "deferred", "raced", "succeeded", "retry_scheduled", "dead_lettered"]
    detail: str = ""
    decision: Decision | None = None
    http: HttpOutcome | None = None
    target_host: str | None = None  # for the latency-by-target query: the host only, a URL may carry tokens

    @property
    def recorded(self) -> bool:
        return self.decision is not None and self.outcome != "raced"


@dataclass
class DeliveryWorker:
    """``random_fraction``, ``resolve``, ``send`` and ``tls`` are seams for tests (seeded jitter, a
    resolver naming a test host, the HTTP adapter, a context trusting a test certificate)."""

    store: EventLog
    queue: DeliveryQueue
    settings: DeliverySettings
    clock: Clock = SYSTEM_CLOCK
    random_fraction: RandomFraction = field(default_factory=lambda: random.SystemRandom().random)
    resolve: Resolver = system_resolver
    send: Send = webhook_http.post
    tls: ssl.SSLContext | None = None

    def run(self, job: DeliveryJob) -> JobResult:
        events = self.store.read_stream(job.stream)
        if not events or not isinstance(events[0].data, MessageReceived):
            raise InvalidDeliveryJob(f"{job.stream} has no message_received event: nothing to deliver")
        state = DeliveryStatusProjection.fold(stream_key(job.stream), events)
        step = plan_job(attempt=job.attempt, attempts_made=state.attempts, finished=_finished(state),
                        retry_due_at=_retry_due_at(state), now=self.clock.now())
        if isinstance(step, Skip):
            return JobResult("skipped", step.reason)
        if isinstance(step, Defer):
            self.queue.send(job, step.seconds)
            return JobResult("deferred", f"{step.seconds:.3f}s early")
        decision, http = self._attempt(job.attempt, events[0], state.round_start)
        result = self._record(job, events[0], events[-1].version, decision, http)
        return replace(result, target_host=urlsplit(events[0].data.target_url).hostname)

    def _attempt(self, attempt: int, received: RecordedEvent,
                 round_start: int) -> tuple[Decision, HttpOutcome | None]:
        message = received.data
        if not isinstance(message, MessageReceived):  # the job fails; SQS retries, then dead-letters it
            raise ValueError(f"{received.stream}: starts with {received.type}, not a received message")
        payload = revealed(message.payload)
        if not isinstance(payload, dict):  # its data subject was forgotten: there is nothing left to send
            return decide_refusal(attempt, "PAYLOAD_ERASED: the message's data subject was forgotten",
                                  self.clock.now()), None
        disabled = disabled_by(self.store.read_stream(target_stream(message.target_url)))
        if disabled is not None:
            return decide_refusal(attempt, f"TARGET_DISABLED: {disabled.reason}", self.clock.now()), None
        try:
            target = check_target(message.target_url, self.settings.targets, self.resolve)
        except TargetRefused as refused:
            return decide_refusal(attempt, f"TARGET_REFUSED: {refused}", self.clock.now()), None
        key = signing_key(self.settings.signing_secret)  # missing or bad: the job fails, nothing unsigned goes out
        body = canonical_json(payload).encode("utf-8")
        headers = signed_headers(key, received.id, int(self.clock.now().timestamp()), body)
        started = time.perf_counter()
        try:
            http = self.send(target, body, headers, self.settings.timeout_seconds, self.tls)
        except Exception as error:  # noqa: BLE001 - the request may have gone out: it is an attempt all the same
            logger.warning("sending failed unexpectedly; recorded as a connection error",
                           extra={"attempt": attempt, "error": f"{type(error).__name__}: {error}"[:500]})
            http = HttpOutcome(None, round((time.perf_counter() - started) * 1000.0, 3),
                               error=_bounded(f"{type(error).__name__}: {error}"), failure="connection")
        return self._decide(attempt, http, round_start), http

    def _decide(self, attempt: int, http: HttpOutcome, round_start: int) -> Decision:
        """What attempt ``attempt`` amounts to. Past the request, nothing may fail the job (a failed job
        is retried by the queue and repeats the request): if the decision itself fails on something the
        target sent, it is made again without the target's hints (issue 12 defect 3)."""
        try:
            return decide_attempt(attempt, http, self.settings.retry, self.clock.now(), self.random_fraction,
                                  round_start)
        except Exception as error:  # noqa: BLE001 - see above
            logger.warning("the target's answer could not be read in full; deciding without its hints",
                           extra={"attempt": attempt, "error": f"{type(error).__name__}: {error}"[:500]})
        plain = replace(http, retry_after=None, error=_bounded(http.error or "") or None,
                        response_time_ms=max(0.0, http.response_time_ms))
        return decide_attempt(attempt, plain, self.settings.retry, self.clock.now(), self.random_fraction,
                              round_start)

    def _record(self, job: DeliveryJob, received: RecordedEvent, version: int, decision: Decision,
                http: HttpOutcome | None) -> JobResult:
        correlation = job.correlation_id or received.correlation_id
        events = [replace(e, source=SOURCE, correlation_id=correlation, causation_id=job.cause_event_id)
                  for e in decision.events]
        try:
            self.store.append(job.stream, events, expected_version=version,
                               idempotency_key=f"{job.stream}:attempt-{job.attempt}")
        except (VersionConflict, IdempotencyKeyReused) as error:
            # Someone appended since we read. If it was this attempt (another worker on a duplicate
            # job), theirs stands; otherwise our reading is stale and the job is retried. A reused
            # attempt key means another worker claimed this attempt and is writing it (its guard
            # goes in just before its events): give it a moment to land before deciding.
            waits = _CLAIMED_WAITS if isinstance(error, IdempotencyKeyReused) else (0.0,)
            for wait in waits:
                time.sleep(wait)
                now_made = DeliveryStatusProjection.fold(stream_key(job.stream), self.store.read_stream(job.stream))
                if now_made.attempts >= job.attempt:
                    return JobResult("raced", f"attempt {job.attempt} was recorded by another worker", decision,
                                     http)
            raise  # not recorded (the other worker may have died after its claim): SQS retries the job
        return JobResult(decision.result, decision.dead_letter_reason or "", decision, http)


# How long a worker that lost the claim of an attempt looks for the winner's events: the winner's
# guard and events are two consecutive writes, so they land within milliseconds unless it died.
_CLAIMED_WAITS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)


def _bounded(text: str) -> str:
    return text if len(text) <= webhook_http.MAX_ERROR_CHARS else text[: webhook_http.MAX_ERROR_CHARS - 1] + "…"


def _finished(state: DeliveryStatus) -> bool:
    return state.delivered_at is not None or state.dead_letter_reason is not None


def _retry_due_at(state: DeliveryStatus) -> datetime | None:
    return parse_time(state.next_retry_at) if state.status == RETRY_SCHEDULED and state.next_retry_at else None


# ----------------------------------------------------------------------------- Lambda
