"""The rebuild state machine: its definition validated by Amazon States Language tooling
(asl-validator), its contract with the code (every field it reads and passes), and the CLI that
starts and follows an execution (a real boto3 Step Functions client under botocore's Stubber:
executions are AWS's to run, but every request and answer has the API model's shape)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from processors.cli import rebuild as rebuild_cli
from processors.cli.main import main
from processors.operations.asl import DEFINITION, substituted, validate
from processors.operations.template import Tag, load_template
from processors.services.rebuild_segment import SegmentTask
from projections.registry import VIEWS_BY_NAME

RESOURCES = load_template()["Resources"]
MACHINE = RESOURCES["RebuildStateMachine"]["Properties"]
ARNS = {name: f"arn:aws:lambda:us-east-1:123456789012:function:stack-{name}"
        for name in MACHINE["DefinitionSubstitutions"]}


def definition() -> dict:
    return json.loads(substituted(DEFINITION.read_text(), ARNS))


def test_the_template_points_at_the_definition_and_substitutes_every_placeholder():
    assert MACHINE["DefinitionUri"] == "statemachine/rebuild.asl.json"
    assert {name: value for name, value in MACHINE["DefinitionSubstitutions"].items()} == {
        "RebuildSegmentFunctionArn": Tag("GetAtt", "RebuildSegmentFunction.Arn"),
        "RebuildCompareFunctionArn": Tag("GetAtt", "RebuildCompareFunction.Arn")}
    assert set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text())) == set(MACHINE["DefinitionSubstitutions"])


def test_asl_validator_accepts_the_definition_and_has_teeth(tmp_path):
    valid, report = validate(definition(), tmp_path)
    assert valid, report
    broken = definition()
    broken["States"]["FillSegments"]["ItemProcessor"]["States"]["SegmentDone"]["Default"] = "Nowhere"
    valid, report = validate(broken, tmp_path)
    assert not valid and "Nowhere" in report


def test_the_map_loops_each_segment_until_done_with_retries_and_a_concurrency_parameter():
    fill = definition()["States"]["FillSegments"]
    assert fill["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert fill["MaxConcurrencyPath"] == "$.max_concurrency" and fill["Next"] == "CompareSegments"
    inner = fill["ItemProcessor"]["States"]
    assert inner["SegmentDone"]["Choices"] == [{"Variable": "$.done", "BooleanEquals": False, "Next": "FoldSlice"}]
    throttles = inner["FoldSlice"]["Retry"][0]["ErrorEquals"]
    assert {"Lambda.TooManyRequestsException", "ProvisionedThroughputExceededException"} <= set(throttles)
    # What the state passes is a SegmentTask (plus the running totals and the retry count).
    payload = {key.removesuffix(".$") for key in inner["FoldSlice"]["Parameters"]["Payload"]}
    assert payload == set(SegmentTask(("inventory",), {}, 0, 1).to_json()) - {"page_size"} | {"totals", "attempt"}


def test_the_cli_input_carries_every_field_the_definition_selects():
    from processors.operations.rebuild import table_rule
    from processors.operations.rebuild_aws import AwsOptions, execution_input

    families = VIEWS_BY_NAME["inventory"].families
    payload = execution_input(["inventory"], {f: f"stack-{f}-v1" for f in families},
                              {f: f"stack-{f}-v2" for f in families},
                              {f: table_rule(f) for f in families}, AwsOptions(segments=8, max_concurrency=4),
                              switch=True)
    text = DEFINITION.read_text()
    produced = {"done", "Payload", "totals", "compared", "result", "after_switch"}  # states' own results
    top_level = {m for m in re.findall(r'"\$\.(\w+)"', text)} - produced
    inner = {"segment", "start_key", "guard"}  # built per item by ItemSelector / returned by the worker
    assert top_level - inner <= set(payload), top_level - inner - set(payload)
    assert payload["segments"] == list(range(8)) and payload["rules"]["inventory"]["category"] == "sku"


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:stack-rebuild:x"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:stack-rebuild"
MAP_RUN = "arn:aws:states:us-east-1:123456789012:mapRun:stack-rebuild/FillSegments:y"
STARTED = datetime(2026, 11, 28, tzinfo=UTC)
VERDICT = {"equal": True, "rows_compared": {"inventory": 3}, "caught_up": 2, "differences": [],
           "difference_count": 0, "switched": None}


def counts(done: int, total: int) -> dict[str, int]:
    """MapRunItemCounts: every member the API reference marks required (resultsWritten included)."""
    return {"pending": 0, "running": total - done, "succeeded": done, "failed": 0, "timedOut": 0,
            "aborted": 0, "total": total, "resultsWritten": 0}


class StubbedStepFunctions:
    """A real boto3 Step Functions client answered by botocore's Stubber: every request we make is
    validated against AWS's service model (required parameters, types) and matched to the expected
    parameters, and every answer queued here is validated against the operation's response shape, so
    the code is tested against the API's real fields, not a hand-written imitation of them.
    Shapes: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html,
    API_DescribeExecution.html, API_ListMapRuns.html, API_DescribeMapRun.html (itemCounts is a
    MapRunItemCounts: API_MapRunItemCounts.html)."""

    def __init__(self) -> None:
        self.client = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="stub",
                                   aws_secret_access_key="stub")
        self.stubber = Stubber(self.client)
        self.started: list[dict] = []
        self._interrupt_at: int | None = None
        self._describes = 0
        events = self.client.meta.events
        events.register("provide-client-params.sfn.StartExecution",
                        lambda params, **_: self.started.append(dict(params)))
        events.register("provide-client-params.sfn.DescribeExecution", self._maybe_interrupt)
        self.stubber.activate()

    def _maybe_interrupt(self, **_: object) -> None:
        self._describes += 1
        if self._describes == self._interrupt_at:
            raise KeyboardInterrupt  # the operator's Ctrl-C while the CLI is polling

    def interrupt_at_poll(self, number: int) -> None:
        self._interrupt_at = self._describes + number

    def start(self) -> None:
        self.stubber.add_response("start_execution", {"executionArn": EXECUTION, "startDate": STARTED},
                                  {"stateMachineArn": MACHINE_ARN, "name": ANY, "input": ANY})

    def poll(self, status: str, done: int | None = None, total: int = 8, **described: str) -> None:
        """One round of follow(): DescribeExecution, then ListMapRuns (and DescribeMapRun once it exists)."""
        self.stubber.add_response("describe_execution", {"executionArn": EXECUTION, "stateMachineArn": MACHINE_ARN,
                                                         "status": status, "startDate": STARTED, **described},
                                  {"executionArn": EXECUTION})
        if done is None:  # the Distributed Map has not started yet
            self.stubber.add_response("list_map_runs", {"mapRuns": []}, {"executionArn": EXECUTION})
            return
        self.stubber.add_response("list_map_runs", {"mapRuns": [{
            "executionArn": EXECUTION, "mapRunArn": MAP_RUN, "stateMachineArn": f"{MACHINE_ARN}/FillSegments",
            "startDate": STARTED}]}, {"executionArn": EXECUTION})
        self.stubber.add_response("describe_map_run", {
            "mapRunArn": MAP_RUN, "executionArn": EXECUTION, "status": "RUNNING" if done < total else "SUCCEEDED",
            "startDate": STARTED, "maxConcurrency": 4, "toleratedFailurePercentage": 0.0,
            "toleratedFailureCount": 0, "itemCounts": counts(done, total), "executionCounts": counts(done, total)},
            {"mapRunArn": MAP_RUN})

    def succeeded(self, done: int = 8) -> None:
        self.poll("SUCCEEDED", done, output=json.dumps(VERDICT))


class RecordingBar:
    def __init__(self) -> None:
        self.advances: list[int] = []
        self.said: list[str] = []
        self.finished = False

    def say(self, line: str) -> None:
        self.said.append(line)

    def advance(self, count: int) -> None:
        self.advances.append(count)

    def finish(self) -> None:
        self.finished = True


def test_the_bar_advances_by_the_map_runs_succeeded_items_until_the_execution_ends():
    from processors.operations.rebuild_aws import follow

    sfn = StubbedStepFunctions()
    sfn.poll("RUNNING")
    sfn.poll("RUNNING", 2)
    sfn.poll("RUNNING", 6)
    sfn.succeeded()
    bar = RecordingBar()
    ended = follow(sfn.client, EXECUTION, 800, bar, poll=0, sleep=lambda _: None)
    assert bar.advances == [200, 400, 200] and bar.finished
    assert ended["status"] == "SUCCEEDED" and ended["output"] == VERDICT
    sfn.stubber.assert_no_pending_responses()


def test_the_bar_follows_the_fill_and_the_later_map_runs_are_said_though_listed_first_and_paged():
    from datetime import timedelta

    from processors.operations.rebuild_aws import follow

    sfn = StubbedStepFunctions()
    runs = {state: {"executionArn": EXECUTION, "mapRunArn": MAP_RUN.replace("FillSegments", state),
                    "stateMachineArn": f"{MACHINE_ARN}/{state}", "startDate": STARTED + timedelta(minutes=minutes)}
            for state, minutes in (("FillSegments", 0), ("CompareSegments", 6), ("CatchUpSegments", 9))}
    sfn.stubber.add_response("describe_execution", {"executionArn": EXECUTION, "stateMachineArn": MACHINE_ARN,
                                                    "status": "SUCCEEDED", "startDate": STARTED,
                                                    "output": json.dumps(VERDICT)}, {"executionArn": EXECUTION})
    sfn.stubber.add_response("list_map_runs", {"mapRuns": [runs["CatchUpSegments"], runs["CompareSegments"]],
                                               "nextToken": "page-2"}, {"executionArn": EXECUTION})
    sfn.stubber.add_response("list_map_runs", {"mapRuns": [runs["FillSegments"]]},
                             {"executionArn": EXECUTION, "nextToken": "page-2"})
    for state, done in (("FillSegments", 8), ("CompareSegments", 8), ("CatchUpSegments", 5)):
        sfn.stubber.add_response("describe_map_run", {
            "mapRunArn": runs[state]["mapRunArn"], "executionArn": EXECUTION, "status": "RUNNING",
            "startDate": runs[state]["startDate"], "maxConcurrency": 4, "toleratedFailurePercentage": 0.0,
            "toleratedFailureCount": 0, "itemCounts": counts(done, 8), "executionCounts": counts(done, 8)},
            {"mapRunArn": runs[state]["mapRunArn"]})
    bar = RecordingBar()
    follow(sfn.client, EXECUTION, 800, bar, poll=0, sleep=lambda _: None)
    assert bar.advances == [800]  # the fill's 8 of 8, not the carry-over's 5 of 8
    assert bar.said == ["comparing: 8/8 segments", "carrying over after the switch: 5/8 segments"]
    sfn.stubber.assert_no_pending_responses()


def test_two_starts_in_the_same_second_get_different_execution_names(tmp_path, monkeypatch):
    from processors.operations import rebuild_aws

    monkeypatch.setattr(rebuild_aws.time, "time", lambda: 1_795_000_000.0)
    sfn = StubbedStepFunctions()
    sfn.start()
    sfn.start()
    views = ["inventory", "pending-errors", "delivery-status", "alerts"]
    for _ in range(2):
        rebuild_aws.start(sfn.client, MACHINE_ARN, {"views": views, "targets": {}}, tmp_path, "p-", 10)
    first, second = (started["name"] for started in sfn.started)
    assert first != second and len(first) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", first)


@pytest.fixture
def cli(local_dynamo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.chdir(tmp_path)

    def run(*argv):
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_on_aws_starts_an_execution_follows_it_and_ctrl_c_leaves_it_running_for_status(cli, monkeypatch):
    sfn = StubbedStepFunctions()
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: sfn.client)
    sfn.start()
    sfn.poll("RUNNING")
    sfn.interrupt_at_poll(2)
    code, out, _ = cli("rebuild", "inventory", "--on-aws", "--segments", "8", "--max-concurrency", "4",
                       "--state-machine", MACHINE_ARN, "--poll-seconds", "0")
    assert code == 0 and "keeps running on AWS" in out and "dynafold rebuild status" in out
    sfn.stubber.assert_no_pending_responses()  # started once, polled once, then Ctrl-C: nothing stopped
    [started] = sfn.started
    assert started["stateMachineArn"] == MACHINE_ARN
    assert re.fullmatch(r"rebuild-\d+-[0-9a-f]{8}-inventory", started["name"])
    payload = json.loads(started["input"])
    assert payload["targets"] == {"inventory": "test-inventory-v2", "inventory-returns": "test-inventory-returns-v2"}
    assert (payload["total_segments"], payload["max_concurrency"], payload["switch"]) == (8, 4, False)

    reattached = StubbedStepFunctions()
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: reattached.client)
    reattached.poll("RUNNING", 6)
    reattached.succeeded()
    code, out, _ = cli("rebuild", "status", "--poll-seconds", "0")
    assert code == 0 and "EQUAL" in out and not reattached.started  # reattached, nothing started
    reattached.stubber.assert_no_pending_responses()


def test_status_reports_a_failed_execution_with_its_error_and_cause(cli, monkeypatch, tmp_path):
    from processors.operations.rebuild_aws import start

    sfn = StubbedStepFunctions()
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: sfn.client)
    sfn.start()
    start(sfn.client, MACHINE_ARN, {"views": ["inventory"], "targets": {}}, tmp_path / ".dynafold", "test-", 800)
    sfn.poll("RUNNING", 3)
    sfn.poll("FAILED", 5, error="States.TaskFailed", cause="segment 5: AccessDeniedException")
    code, out, _ = cli("rebuild", "status", "--poll-seconds", "0")
    assert code == 1 and "FAILED: States.TaskFailed: segment 5: AccessDeniedException" in out
    sfn.stubber.assert_no_pending_responses()


def test_status_says_an_aborted_execution_without_inventing_an_error(cli, monkeypatch, tmp_path):
    # DescribeExecution's error and cause are optional: an execution stopped from the console has none.
    from processors.operations.rebuild_aws import start

    sfn = StubbedStepFunctions()
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: sfn.client)
    sfn.start()
    start(sfn.client, MACHINE_ARN, {"views": ["inventory"], "targets": {}}, tmp_path / ".dynafold", "test-", 800)
    sfn.poll("ABORTED", 2)
    code, out, _ = cli("rebuild", "status", "--poll-seconds", "0")
    assert code == 1 and "ABORTED" in out and "None" not in out


def test_status_keeps_following_an_execution_pending_redrive(cli, monkeypatch, tmp_path):
    # A redriven execution keeps its ARN and passes through PENDING_REDRIVE back to RUNNING
    # (https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html;
    # ExecutionStatus in API_DescribeExecution.html): it has not ended, so the CLI keeps following.
    from processors.operations.rebuild_aws import start

    sfn = StubbedStepFunctions()
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: sfn.client)
    sfn.start()
    start(sfn.client, MACHINE_ARN, {"views": ["inventory"], "targets": {}}, tmp_path / ".dynafold", "test-", 800)
    sfn.poll("PENDING_REDRIVE", 5)
    sfn.poll("RUNNING", 7)
    sfn.succeeded()
    code, out, _ = cli("rebuild", "status", "--poll-seconds", "0")
    assert code == 0 and "EQUAL" in out
    sfn.stubber.assert_no_pending_responses()


def test_on_aws_without_a_state_machine_is_one_clear_line_and_changes_nothing(cli, monkeypatch):
    monkeypatch.delenv("DYNAFOLD_REBUILD_STATE_MACHINE", raising=False)
    code, _, err = cli("rebuild", "inventory", "--on-aws")
    assert code == 2 and "--state-machine" in err
    code, _, err = cli("rebuild", "status")
    assert code == 2 and "no rebuild was started on AWS" in err


def test_dry_run_plans_both_modes_with_its_assumptions_and_changes_nothing(cli, local_dynamo):
    before = sorted(local_dynamo.client.list_tables()["TableNames"])
    code, out, _ = cli("rebuild", "all", "--dry-run", "--on-aws", "--max-concurrency", "128",
                       "--assume-events", "100000000", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["mode"] == "aws" and plan["workers"] == 64  # min(segments 64, concurrency)
    assert plan["events"] == 100_000_000 and plan["fill_seconds"] <= 900 and plan["bound"] == "write quota"
    assert any("40,000" in line for line in plan["assumptions"])
    # The goal on paper: 100M events in <= 15 minutes, compared segment by segment, not switched
    assert plan["seconds"] <= 15 * 60 and plan["switch_seconds"] == 0, plan
    assert not any(line.startswith("LIMIT") for line in plan["assumptions"])
    code, out, _ = cli("rebuild", "all", "--dry-run", "--on-aws", "--assume-events", "100000000", "--switch",
                       "--json")
    switched = json.loads(out)
    assert switched["switch_seconds"] >= 120 and switched["seconds"] <= 15 * 60, switched
    code, out, _ = cli("rebuild", "all", "--dry-run", "--on-aws", "--assume-events", "1000000000", "--segments",
                       "8", "--max-concurrency", "8")
    assert code == 0 and "LIMIT: one segment's comparison needs" in out and "use --segments" in out
    code, out, _ = cli("rebuild", "inventory", "--dry-run", "--workers", "2")
    assert code == 0 and "locally, 2 worker processes" in out and "assuming:" in out and "nothing was changed" in out
    assert sorted(local_dynamo.client.list_tables()["TableNames"]) == before


def test_dry_run_states_the_pre_warm_it_will_do_and_its_charge(cli):
    code, out, _ = cli("rebuild", "all", "--dry-run", "--on-aws", "--assume-events", "100000000")
    assert code == 0 and "tables   pre-warmed to 40,000 writes/s" in out
    # 13 tables and indexes (every view family's table and its GSIs), each 36,000 above the 4,000 default
    assert "+ pre-warm (468,000 write units/s raised once)" in out and "charged once" in out
    code, out, _ = cli("rebuild", "all", "--dry-run", "--on-aws", "--assume-events", "100000000",
                       "--warm-writes", "0")
    assert code == 0 and "tables   not pre-warmed" in out and "pre-warm (" not in out
    assert "new tables start at 4,000 writes/s (not pre-warmed: --warm-writes 0)" in out
    code, out, _ = cli("rebuild", "inventory", "--dry-run")  # this (empty) log: nothing worth pre-warming
    assert code == 0 and "tables   not pre-warmed" in out


def test_a_copy_is_still_created_where_warm_throughput_is_ignored_and_the_warning_names_it(local_dynamo):
    from processors.operations.tables import create_copy

    warnings: list[str] = []
    assert create_copy(local_dynamo.client, "alerts-v1", "test-alerts-v2", warm_writes=8_000,
                       warn=warnings.append)
    assert local_dynamo.client.describe_table(TableName="test-alerts-v2")["Table"]["TableStatus"] == "ACTIVE"
    [warning] = warnings  # DynamoDB Local accepts WarmThroughput and describes none
    assert warning.startswith("warning: test-alerts-v2: not applied on this engine: ")
    assert "point-in-time recovery" in warning and "warm throughput 8,000 writes/s (DescribeTable shows none)" in warning


def test_rebuild_with_warm_writes_creates_warns_and_refuses_bad_values(cli, local_dynamo):
    before = sorted(local_dynamo.client.list_tables()["TableNames"])
    for bad in ("100", "50000", "-1"):  # below the default, above DescribeLimits' table quota, negative
        code, _, err = cli("rebuild", "inventory", "--warm-writes", bad)
        assert code == 2 and "--warm-writes" in err, err
    assert sorted(local_dynamo.client.list_tables()["TableNames"]) == before
    code, out, err = cli("rebuild", "inventory", "--warm-writes", "8000")
    assert code == 0 and "created test-inventory-v2 (pre-warmed to 8,000 writes/s)" in out
    assert "test-inventory-v2: not applied on this engine:" in err and "warm throughput 8,000 writes/s" in err
