"""A local stand-in for AWS Step Functions that runs the rebuild's own definition
(statemachine/rebuild.asl.json) over the functions the local stack builds, so the whole AWS
rebuild — fill map, compare map, verdict, switch, wait, catch-up map — runs against DynamoDB Local.

It implements the part of the Amazon States Language that definition uses, as documented, and
refuses anything else by name rather than guessing:
https://states-language.net/spec.html and
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html

- States: Task (``arn:aws:states:::lambda:invoke`` only), Map (inline or distributed: every item
  runs the ItemProcessor as its own execution, at most MaxConcurrency at once), Choice
  (BooleanEquals, IsNull, StringEquals, NumericEquals), Wait (Seconds, SecondsPath), Pass.
- Input and output: InputPath, Parameters / ItemSelector, ResultSelector, ResultPath, OutputPath,
  in that order; JSONPath ``$``, ``$.a.b``, ``$.a[*].b`` and the context object
  (``$$.Map.Item.Value``, ``$$.Map.Item.Index``, ``$$.State.RetryCount``). A path that selects
  nothing fails the execution with ``States.Runtime``, as Step Functions does.
- Lambda: the optimized integration's result (``Payload`` parsed, ``StatusCode``); an exception
  in the function fails the task with its type as the error name and ``{errorMessage, errorType}``
  as the cause. https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html
- Retry: ErrorEquals (``States.ALL``), IntervalSeconds (1), MaxAttempts (3), BackoffRate (2.0),
  MaxDelaySeconds, JitterStrategy FULL. https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
- Limits: a state's input or output over 256 KiB fails with ``States.DataLimitExceeded``; a Map
  fails with ``States.ExceedToleratedFailureThreshold`` past ToleratedFailurePercentage (0).
  https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from processors.local.stream_runner import LambdaContext

Function = Callable[[Any, Any], Any]
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
PAYLOAD_LIMIT_BYTES = 256 * 1024
_DEFAULT_RETRY = {"IntervalSeconds": 1.0, "MaxAttempts": 3, "BackoffRate": 2.0}


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class UnsupportedDefinition(ValueError):
    """The definition uses ASL this stand-in does not implement."""


@dataclass
class MapRun:
    """A Map state's run, with the item counts DescribeMapRun reports."""

    state: str
    total: int
    started: float = field(default_factory=time.time)
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    stopped: float | None = None

    @property
    def pending(self) -> int:
        return self.total - self.succeeded - self.failed - self.running


class LocalStateMachine:
    def __init__(self, definition: Mapping[str, Any], functions: Mapping[str, Function], *,
                 sleep: Callable[[float], None] = time.sleep, function_timeout: float = 900.0,
                 on_map_run: Callable[[MapRun], None] = lambda run: None) -> None:
        self._definition = definition
        self._functions = functions
        self._sleep = sleep
        self._timeout = function_timeout
        self._on_map_run = on_map_run
        self._lock = threading.Lock()

    def run(self, execution_input: Any) -> Any:
        """The execution's output, or ExecutionFailed(error, cause)."""
        return self._run_states(self._definition, execution_input, {})

    # ------------------------------------------------------------------ states

    def _run_states(self, machine: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        states = machine["States"]
        name = machine["StartAt"]
        while True:
            state = states[name]
            data, following = self._run_state(name, state, data, context)
            _check_size(name, data)
            if following is None:
                return data
            name = following

    def _run_state(self, name: str, state: Mapping[str, Any], data: Any,
                   context: dict[str, Any]) -> tuple[Any, str | None]:
        kind = state["Type"]
        following = None if state.get("End") else state.get("Next")
        if kind == "Choice":
            return data, _choose(name, state, data)
        effective = _select(state.get("InputPath", "$"), data, context)
        if kind == "Pass":
            result = _fill(state["Parameters"], effective, context) if "Parameters" in state \
                else state.get("Result", effective)
        elif kind == "Wait":
            seconds = state["Seconds"] if "Seconds" in state else _select(state["SecondsPath"], effective, context)
            self._sleep(float(seconds))
            return _select(state.get("OutputPath", "$"), data, context), following
        elif kind == "Task":
            result = self._with_retries(name, state, effective, context)
        elif kind == "Map":
            result = self._map(name, state, effective, context)
        else:
            raise UnsupportedDefinition(f"state {name}: type {kind} is not implemented by the local stand-in")
        if "ResultSelector" in state:
            result = _fill(state["ResultSelector"], result, context)
        output = _place(state.get("ResultPath", "$"), data, result)
        return _select(state.get("OutputPath", "$"), output, context), following

    def _with_retries(self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        attempts: dict[int, int] = {}
        while True:
            retries = sum(attempts.values())
            try:
                return self._task(name, state, data, {**context, "State": {"Name": name, "RetryCount": retries}})
            except ExecutionFailed as failure:
                matching = [index for index, retrier in enumerate(state.get("Retry", ()))
                            if failure.error in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]]
                if not matching:
                    raise
                index = matching[0]  # the first retrier that names the error applies
                rule = {**_DEFAULT_RETRY, **state["Retry"][index]}
                attempts[index] = attempts.get(index, 0) + 1
                if attempts[index] > int(rule["MaxAttempts"]):
                    raise
                delay = float(rule["IntervalSeconds"]) * float(rule["BackoffRate"]) ** (attempts[index] - 1)
                delay = min(delay, float(rule.get("MaxDelaySeconds", delay)))
                if rule.get("JitterStrategy") == "FULL":
                    delay = random.uniform(0, delay)  # noqa: S311 - spreads retries, not a secret
                self._sleep(delay)

    def _task(self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        if state.get("Resource") != LAMBDA_INVOKE:
            raise UnsupportedDefinition(f"state {name}: resource {state.get('Resource')} is not implemented")
        parameters = _fill(state["Parameters"], data, context)
        function = self._functions.get(parameters["FunctionName"])
        if function is None:
            raise ExecutionFailed("Lambda.ResourceNotFoundException",
                                  f"Function not found: {parameters['FunctionName']}")
        payload = json.loads(json.dumps(parameters.get("Payload")))  # the function gets JSON, not our objects
        function_name = parameters["FunctionName"].rsplit(":", 1)[-1]
        try:
            output = function(payload, LambdaContext.local(function_name, self._timeout))
        except Exception as error:  # a function's error fails the task, as on AWS
            kind = type(error).__name__
            raise ExecutionFailed(kind, json.dumps({"errorMessage": str(error), "errorType": kind})) from error
        return {"ExecutedVersion": "$LATEST", "Payload": json.loads(json.dumps(output)), "StatusCode": 200}

    def _map(self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]) -> list[Any]:
        items = _select(state.get("ItemsPath", "$"), data, context)
        if not isinstance(items, list):
            raise ExecutionFailed("States.Runtime", f"state {name}: ItemsPath did not select an array")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is None:
            raise UnsupportedDefinition(f"state {name}: a Map without ItemProcessor is not implemented")
        concurrency = int(_select(state["MaxConcurrencyPath"], data, context) if "MaxConcurrencyPath" in state
                          else state.get("MaxConcurrency", 0)) or len(items) or 1
        run = MapRun(name, len(items))
        self._on_map_run(run)

        def one(index: int) -> tuple[bool, Any]:
            item_context = {"Map": {"Item": {"Index": index, "Value": items[index]}}}
            selected = _fill(state["ItemSelector"], data, item_context) if "ItemSelector" in state else items[index]
            with self._lock:
                run.running += 1
            try:
                return True, self._run_states(processor, selected, {})
            except ExecutionFailed as failure:
                return False, failure
            finally:
                with self._lock:
                    run.running -= 1

        results: list[Any] = []
        failures: list[ExecutionFailed] = []
        with ThreadPoolExecutor(max_workers=min(concurrency, max(1, len(items))),
                                thread_name_prefix=f"map-{name}") as pool:
            for ok, outcome in pool.map(one, range(len(items))):
                with self._lock:
                    if ok:
                        run.succeeded += 1
                    else:
                        run.failed += 1
                (results if ok else failures).append(outcome)
        run.stopped = time.time()
        tolerated = float(state.get("ToleratedFailurePercentage", 0)) / 100 * len(items)
        if failures and len(failures) > tolerated:
            first = failures[0]
            raise ExecutionFailed("States.ExceedToleratedFailureThreshold", f"{len(failures)} of {len(items)} "
                                  f"items failed; the first: {first.error}: {first.cause}")
        return results


# ---------------------------------------------------------------------------- paths and data


def _select(path: str | None, data: Any, context: Mapping[str, Any]) -> Any:
    """The value a JSONPath selects (``None`` selects an empty object, as ``InputPath: null`` does)."""
    if path is None:
        return {}
    if path == "$":
        return data
    if path.startswith("$$."):
        root, rest = context, path[3:]
    elif path.startswith("$."):
        root, rest = data, path[2:]
    else:
        raise UnsupportedDefinition(f"path {path!r} is not implemented by the local stand-in")
    return _walk(root, rest.split("."), path)


def _walk(value: Any, parts: list[str], path: str) -> Any:
    for position, part in enumerate(parts):
        spread = part.endswith("[*]")
        key = part.removesuffix("[*]")
        if not isinstance(value, Mapping) or key not in value:
            raise ExecutionFailed("States.Runtime", f"The JSONPath '{path}' could not be found in the input")
        value = value[key]
        if spread:
            if not isinstance(value, list):
                raise ExecutionFailed("States.Runtime", f"The JSONPath '{path}' does not select an array")
            rest = parts[position + 1:]
            return [_walk(element, rest, path) for element in value] if rest else list(value)
    return value


def _fill(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """A Parameters / ItemSelector / ResultSelector template with every ``"key.$": path`` resolved."""
    if isinstance(template, Mapping):
        filled = {}
        for key, value in template.items():
            if key.endswith(".$"):
                filled[key[:-2]] = copy.deepcopy(_select(value, data, context))
            else:
                filled[key] = _fill(value, data, context)
        return filled
    if isinstance(template, list):
        return [_fill(value, data, context) for value in template]
    return template


def _place(path: str | None, data: Any, result: Any) -> Any:
    """The state's input with the result placed at ResultPath (``null``: the input unchanged)."""
    if path is None:
        return data
    if path == "$":
        return result
    if not path.startswith("$."):
        raise UnsupportedDefinition(f"ResultPath {path!r} is not implemented by the local stand-in")
    placed: dict[str, Any] = copy.deepcopy(dict(data)) if isinstance(data, Mapping) else {}
    cursor = placed
    *parents, last = path[2:].split(".")
    for part in parents:
        cursor = cursor.setdefault(part, {})
        if not isinstance(cursor, dict):
            raise ExecutionFailed("States.Runtime", f"ResultPath {path!r} crosses a value that is not an object")
    cursor[last] = result
    return placed


def _choose(name: str, state: Mapping[str, Any], data: Any) -> str:
    for rule in state["Choices"]:
        try:
            value = _select(rule["Variable"], data, {})
            present = True
        except ExecutionFailed:
            value, present = None, False
        if "IsNull" in rule:
            matched = present and (value is None) == bool(rule["IsNull"])
        elif "BooleanEquals" in rule:
            matched = present and value is rule["BooleanEquals"]
        elif "StringEquals" in rule:
            matched = present and value == rule["StringEquals"]
        elif "NumericEquals" in rule:
            matched = present and isinstance(value, (int, float)) and value == rule["NumericEquals"]
        else:
            raise UnsupportedDefinition(f"state {name}: choice rule {sorted(rule)} is not implemented")
        if matched:
            return str(rule["Next"])
    if "Default" in state:
        return str(state["Default"])
    raise ExecutionFailed("States.NoChoiceMatched", f"state {name}: no choice rule matched and no Default")


def _check_size(name: str, data: Any) -> None:
    size = len(json.dumps(data).encode())
    if size > PAYLOAD_LIMIT_BYTES:
        raise ExecutionFailed("States.DataLimitExceeded",
                              f"state {name}: its output is {size} bytes, over the {PAYLOAD_LIMIT_BYTES}-byte limit")
