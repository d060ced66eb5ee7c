"""The rebuild state machine: its definition validated by Amazon States Language tooling
(asl-validator), its contract with the code (every field it reads and passes), and the CLI that
starts and follows an execution (a recording Step Functions stub: executions are AWS's to run)."""

from __future__ import annotations

import json
import re

import pytest

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
    assert fill["MaxConcurrencyPath"] == "$.max_concurrency" and fill["Next"] == "CatchUpCompareSwitch"
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
    payload = execution_input(["inventory"], {f: f"stack-{f}-v2" for f in families},
                              {f: table_rule(f) for f in families}, AwsOptions(segments=8, max_concurrency=4),
                              switch=True)
    text = DEFINITION.read_text()
    top_level = {m for m in re.findall(r'"\$\.(\w+)"', text)} - {"done", "Payload", "totals"}
    inner = {"segment", "start_key", "guard"}  # built per item by ItemSelector / returned by the worker
    assert top_level - inner <= set(payload), top_level - inner - set(payload)
    assert payload["segments"] == list(range(8)) and payload["rules"]["inventory"]["category"] == "sku"


class FakeStepFunctions:
    """start/describe/list_map_runs/describe_map_run as Step Functions answers them (API reference shapes)."""

    def __init__(self, steps: list[tuple[int, str]]) -> None:
        self.steps = steps  # (segments succeeded, status) per poll
        self.started: list[dict] = []
        self.polls = 0

    def start_execution(self, **request):
        self.started.append(request)
        return {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:stack-rebuild:x"}

    def describe_execution(self, executionArn):
        _, status = self.steps[min(self.polls, len(self.steps) - 1)]
        self.polls += 1
        if status == "INTERRUPT":
            raise KeyboardInterrupt
        answer = {"executionArn": executionArn, "status": status}
        if status == "SUCCEEDED":
            answer["output"] = json.dumps({"equal": True, "rows_compared": {"inventory": 3}, "caught_up": 2,
                                           "differences": [], "difference_count": 0, "switched": None})
        return answer

    def list_map_runs(self, executionArn):
        return {"mapRuns": [{"mapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:stack-rebuild/x:y"}]}

    def describe_map_run(self, mapRunArn):
        done, _ = self.steps[min(self.polls - 1, len(self.steps) - 1)]
        return {"itemCounts": {"succeeded": done, "total": 8, "running": 8 - done}}


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
    interrupted = FakeStepFunctions([(0, "RUNNING"), (3, "INTERRUPT")])
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: interrupted)
    code, out, _ = cli("rebuild", "inventory", "--on-aws", "--segments", "8", "--max-concurrency", "4",
                       "--state-machine", "arn:aws:states:us-east-1:123456789012:stateMachine:stack-rebuild",
                       "--poll-seconds", "0")
    assert code == 0 and "keeps running on AWS" in out and "dynafold rebuild status" in out
    [started] = interrupted.started
    payload = json.loads(started["input"])
    assert payload["targets"] == {"inventory": "test-inventory-v2", "inventory-returns": "test-inventory-returns-v2"}
    assert (payload["total_segments"], payload["max_concurrency"], payload["switch"]) == (8, 4, False)

    finished = FakeStepFunctions([(6, "RUNNING"), (8, "SUCCEEDED")])
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: finished)
    code, out, _ = cli("rebuild", "status", "--poll-seconds", "0")
    assert code == 0 and "EQUAL" in out and not finished.started  # reattached, nothing started


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
    code, out, _ = cli("rebuild", "inventory", "--dry-run", "--workers", "2")
    assert code == 0 and "locally, 2 worker processes" in out and "assuming:" in out and "nothing was changed" in out
    assert sorted(local_dynamo.client.list_tables()["TableNames"]) == before


def test_dry_run_states_the_pre_warm_it_will_do_and_its_charge(cli):
    code, out, _ = cli("rebuild", "all", "--dry-run", "--on-aws", "--assume-events", "100000000")
    assert code == 0 and "tables   pre-warmed to 40,000 writes/s" in out
    # 12 tables and indexes (every view family's table and its GSIs), each 36,000 above the 4,000 default
    assert "+ pre-warm (432,000 write units/s raised once)" in out and "charged once" in out
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
