"""A fault injector over the adapters the handlers talk to: DynamoDB, the job queue, the mailer, HTTP.

``FaultyClient`` wraps a real low-level boto3 DynamoDB client (DynamoDB Local). Per a plan it
raises what AWS really answers - throttling, ``InternalServerError``, ``TransactionCanceledException``
with each documented cancellation reason, a read timeout - either BEFORE forwarding the call (the
request never reached the table) or AFTER it (the write happened but the caller saw an error: the
nastiest case, what a lost response looks like), or ``Crash``: the process dies right after the
call, the "crash between two steps of a handler".

The shapes are AWS's own:
- error codes and HTTP statuses: "Error handling with DynamoDB", Common errors / DynamoDB errors
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html);
- ``TransactionCanceledException``: one ``CancellationReasons`` entry per item, in order, with
  ``Code`` one of None, ConditionalCheckFailed, ItemCollectionSizeLimitExceeded, TransactionConflict,
  ProvisionedThroughputExceeded, ThrottlingError, ValidationError, and the message "Transaction
  cancelled, please refer cancellation reasons for specific reasons [...]"
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html);
  botocore puts ``CancellationReasons`` at the top of the parsed error response (as the store reads it);
- a read timeout is botocore's ``ReadTimeoutError`` (what the SDK raises once its own retries of a
  timed-out request are spent).

Injected errors are raised above botocore, so they are what the caller sees after the SDK's own
retries: harsher than reality, never gentler.
"""

from __future__ import annotations

from pathlib import Path

import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

# The calls that touch data. Control-plane calls (describe_table: the stream runner's ARN lookup,
# the ESM's business, not a handler's) pass through untouched.
DATA_CALLS = frozenset({
    "get_item", "put_item", "update_item", "delete_item", "query", "scan", "batch_get_item",
    "batch_write_item", "transact_write_items", "transact_get_items", "execute_statement",
    "batch_execute_statement", "execute_transaction",
})
WRITE_CALLS = frozenset({"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items",
                         "batch_execute_statement", "execute_statement", "execute_transaction"})
CANCELLATION_CODES = ("ConditionalCheckFailed", "ItemCollectionSizeLimitExceeded", "TransactionConflict",
                      "ProvisionedThroughputExceeded", "ThrottlingError", "ValidationError")
_CANCELLATION_MESSAGES = {
    "ConditionalCheckFailed": "The conditional request failed",
    "ItemCollectionSizeLimitExceeded": "Collection size exceeded.",
    "TransactionConflict": "Transaction is ongoing for the item",
    "ProvisionedThroughputExceeded": "The level of configured provisioned throughput for the table was exceeded.",
    "ThrottlingError": "Throughput exceeds the current capacity for one or more global secondary indexes.",
    "ValidationError": "One or more parameter values were invalid: Item size has exceeded the maximum allowed size",
}
_ERRORS = {  # code -> (HTTP status, message), as DynamoDB answers them
    "ProvisionedThroughputExceededException": (400, "The level of configured provisioned throughput for the table "
                                                    "was exceeded. Consider increasing your provisioning level with "
                                                    "the UpdateTable API."),
    "ThrottlingException": (400, "Rate of requests exceeds the allowed throughput."),
    "RequestLimitExceeded": (400, "Throughput exceeds the current throughput limit for your account."),
    "InternalServerError": (500, "Internal server error"),
    "ServiceUnavailable": (503, "The service is currently unavailable or busy."),
}


class Crash(BaseException):
    """The process died here. A BaseException, so no handler's ``except Exception`` can swallow it:
    only the Lambda runtime boundary (``CrashBoundary``) sees it, as an invocation error."""


@dataclass(frozen=True)
class Fault:
    """What to do to one call. ``kind``: an error code of ``_ERRORS``, ``cancel:<reason>``,
    ``timeout`` or ``crash``; ``after``: forward the call first (it took effect), then fail."""

    kind: str
    after: bool = False

    def __str__(self) -> str:
        return f"{self.kind}{' after' if self.after else ' before'}"


def client_error(operation: str, code: str, *, reasons: list[dict[str, str]] | None = None) -> ClientError:
    if code == "TransactionCanceledException":
        listed = ", ".join(r["Code"] for r in reasons or [])
        status, message = 400, f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]"
    else:
        status, message = _ERRORS[code]
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message},
                                "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "INJECTED"}}
    if reasons is not None:
        response["CancellationReasons"] = reasons
    return ClientError(response, operation)


def _operation_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def fault_error(fault: Fault, method: str, params: Mapping[str, Any], endpoint: str) -> BaseException:
    if fault.kind == "crash":
        return Crash(f"injected crash {'after' if fault.after else 'before'} {method}")
    if fault.kind == "timeout":
        return ReadTimeoutError(endpoint_url=endpoint)
    if fault.kind.startswith("cancel:"):
        reason = fault.kind.partition(":")[2]
        items = params.get("TransactItems") or [None]
        # The reason on the first item, the others "None": DynamoDB names each item's fate in order.
        reasons = [{"Code": reason, "Message": _CANCELLATION_MESSAGES[reason]}] + [{"Code": "None"}] * (len(items) - 1)
        return client_error(_operation_name(method), "TransactionCanceledException", reasons=reasons)
    return client_error(_operation_name(method), fault.kind)


def transient_faults(method: str) -> list[Fault]:
    """Faults that a retry can get past, fitting ``method`` (cancellations only for transactions)."""
    faults = [Fault(code, after) for code in _ERRORS for after in (False, True)]
    faults += [Fault("timeout", after) for after in (False, True)]
    if method == "transact_write_items":
        # A cancelled transaction wrote nothing: cancellations are "before" only. Not
        # ConditionalCheckFailed: DynamoDB answers it only when the condition really failed (the
        # item is there), and a writer may rightly conclude so - "the alert's stream exists, it was
        # raised". Real conditional failures come from real races (tests/integration); a false one
        # is injected only where the caller re-reads before concluding (the view store).
        faults += [Fault(f"cancel:{reason}") for reason in CANCELLATION_CODES if reason != "ConditionalCheckFailed"]
    return faults


Decide = Callable[[int, str, Mapping[str, Any]], "Fault | None"]


@dataclass
class FaultPlan:
    """Which call gets which fault. Calls are numbered in the order they reach the injector (from
    0, across every wrapped adapter sharing the plan); ``decide`` sees the number, the method and its
    parameters. Injected faults are recorded in ``injected`` (the first thing to print on a failure)."""

    decide: Decide = lambda index, method, params: None
    armed: bool = True
    calls: int = 0
    injected: list[tuple[int, str, Fault]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next(self, method: str, params: Mapping[str, Any]) -> Fault | None:
        with self._lock:
            if not self.armed:
                return None
            index = self.calls
            self.calls += 1
            self.seen.append(method)
            fault = self.decide(index, method, params)
            if fault is not None:
                self.injected.append((index, method, fault))
            return fault

    @classmethod
    def at(cls, index: int, fault: Fault | Callable[[str], Fault]) -> "FaultPlan":
        """One fault, at call ``index`` (a function of the method picks a fault that fits it)."""
        def decide(i: int, method: str, params: Mapping[str, Any]) -> Fault | None:
            if i != index:
                return None
            return fault(method) if callable(fault) else fault
        return cls(decide)

    @classmethod
    def seeded(cls, seed: int, *, rate: float, budget: int,
               faults: Callable[[str], list[Fault]] = transient_faults,
               methods: Iterable[str] | None = None) -> "FaultPlan":
        """Each call (of ``methods``, default all) faults with probability ``rate``, at most ``budget``
        times in all: below the event source mapping's retry quota, nothing may end on the failure
        destination, so every fault must be absorbed by a retry or a redelivery."""
        rng = random.Random(seed)
        wanted = frozenset(methods) if methods is not None else None
        left = [budget]

        def decide(i: int, method: str, params: Mapping[str, Any]) -> Fault | None:
            if left[0] <= 0 or (wanted is not None and method not in wanted) or rng.random() >= rate:
                return None
            left[0] -= 1
            return rng.choice(faults(method))
        return cls(decide)


class FaultyClient:
    """A boto3 DynamoDB client whose data calls go through a ``FaultPlan``; everything else passes."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self.plan = plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in DATA_CALLS:
            return attribute

        def call(**params: Any) -> Any:
            fault = self.plan.next(name, params)
            if fault is None:
                return attribute(**params)
            error = fault_error(fault, name, params, self._inner.meta.endpoint_url)
            if fault.after:
                attribute(**params)
            raise error
        return call


def faulty_method(plan: FaultPlan, name: str, method: Callable[..., Any],
                  error: Callable[[Fault], BaseException]) -> Callable[..., Any]:
    """Any adapter method (a queue's send, a mailer's send) through the plan: ``error(fault)`` is
    raised before or after the real call."""
    def call(*args: Any, **kwargs: Any) -> Any:
        fault = plan.next(name, {})
        if fault is None:
            return method(*args, **kwargs)
        if fault.after:
            method(*args, **kwargs)
        raise Crash(f"injected crash at {name}") if fault.kind == "crash" else error(fault)
    return call


class CrashBoundary:
    """The Lambda runtime, seen from a handler: an injected ``Crash`` ends the invocation with an
    error (the event source mapping retries), as a dead process would. Plugged in where the local
    stack routes handlers (its ``logs`` seam, a ``LambdaLogRouter``: where the functions' log lines
    would go, ``directory``, is where the stack reads its metrics back from)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def route(self, function_name: str, handler: Callable[[dict[str, Any], Any], Any]) -> Callable[..., Any]:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return handler(event, context)
            except Crash as crash:
                raise RuntimeError(f"Runtime.ExitError: {function_name} died: {crash}") from None
        return invoke


def sqs_error(fault: Fault) -> BaseException:
    """What SendMessage answers when SQS fails (common errors: InternalFailure 500,
    ServiceUnavailable 503, ThrottlingException 400; https://docs.aws.amazon.com/AWSSimpleQueueService/
    latest/APIReference/CommonErrors.html), or a read timeout."""
    if fault.kind == "timeout":
        return ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com")
    status = {"InternalFailure": 500, "ServiceUnavailable": 503, "ThrottlingException": 400}[fault.kind]
    return ClientError({"Error": {"Code": fault.kind, "Message": f"injected {fault.kind}"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "SendMessage")


def ses_error(fault: Fault) -> BaseException:
    """What SES SendEmail answers when it fails (Throttling "Maximum sending rate exceeded.", or a
    service error), or a read timeout: after=True is "the email went out, the answer was lost"."""
    if fault.kind == "timeout":
        return ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")
    messages = {"Throttling": "Maximum sending rate exceeded.", "ServiceUnavailable": "Service unavailable"}
    return ClientError({"Error": {"Code": fault.kind, "Message": messages[fault.kind]},
                        "ResponseMetadata": {"HTTPStatusCode": 400 if fault.kind == "Throttling" else 503}},
                       "SendEmail")


def faulty_post(plan: FaultPlan, post: Callable[..., Any]) -> Callable[..., Any]:
    """The webhook POST (``webhook_http.post``'s signature) through the plan. ``timeout`` after the
    call: the request reached the target and was answered, but the sender gave up first (what a slow
    network makes of a delivered webhook); ``reset`` after: the connection dropped once sent; a
    ``crash`` kills the worker with the request out."""
    from events.delivery_policy import HttpOutcome

    def send(target: Any, body: bytes, headers: Mapping[str, str], timeout: float, tls: Any = None) -> Any:
        fault = plan.next("http_post", {})
        if fault is None:
            return post(target, body, headers, timeout, tls)
        if fault.after:
            post(target, body, headers, timeout, tls)
        if fault.kind == "timeout":
            return HttpOutcome(None, timeout * 1000.0, error=f"timed out after {timeout:g}s (injected)",
                               failure="timeout")
        if fault.kind == "crash":
            raise Crash("injected crash around the webhook POST")
        raise ConnectionResetError(104, "Connection reset by peer (injected)")
    return send
