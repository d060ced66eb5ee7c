"""`dynafold logs` (issue 19 §A7): the functions' lines in time order, one request's with
--correlation, new ones with --follow until Ctrl-C; CloudWatch Logs on AWS (moto), files locally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from processors.adapters.function_logs import CloudWatchFunctionLogs, line_time
from processors.cli.context import Context
from processors.cli.main import main
from processors.local.function_logs import local_function_logs
from processors.operations.template import function_log_groups, lambda_functions, load_template

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def powertools(service: str, message: str, at: datetime, correlation: str) -> str:
    """A line as Powertools' Logger prints it (its default time format)."""
    return json.dumps({"level": "INFO", "message": message, "service": service, "correlation_id": correlation,
                       "timestamp": at.strftime("%Y-%m-%d %H:%M:%S,") + f"{at.microsecond // 1000:03d}+0000"})


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_the_log_groups_are_the_templates_functions_as_declared():
    template = load_template()
    declared = {r["Properties"]["LogGroupName"].value for r in template["Resources"].values()
                if r["Type"] == "AWS::Logs::LogGroup" and "/aws/lambda/" in str(r["Properties"]["LogGroupName"].value)}
    assert declared == {group.replace("STACK", "${AWS::StackName}")
                        for group in function_log_groups("STACK").values()}
    assert lambda_functions()[:3] == ("projector", "reactor", "ingest")


def test_a_powertools_and_an_emf_line_carry_their_time():
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert line_time(powertools("reactor", "x", at, "c")) == at
    assert line_time(json.dumps({"_aws": {"Timestamp": ms(at)}})) == at
    assert line_time("START RequestId: 1") is None


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        for group in function_log_groups("dynafold-dev").values():
            if not group.endswith("-rebuild-compare"):  # a group never created: no lines, no error
                client.create_log_group(logGroupName=group)
                client.create_log_stream(logGroupName=group, logStreamName="2026/01/01/[$LATEST]abc")
        yield client


def put(client, function: str, *lines: tuple[datetime, str]) -> None:
    client.put_log_events(logGroupName=f"/aws/lambda/dynafold-dev-{function}", logStreamName="2026/01/01/[$LATEST]abc",
                          logEvents=[{"timestamp": ms(at), "message": text} for at, text in lines])


def test_cloudwatch_lines_of_one_request_across_functions_in_time_order_then_only_new_ones(aws):
    t = NOW - timedelta(minutes=5)
    put(aws, "ingest", (t, powertools("ingest", "request", t, "req-1")),
        (t + timedelta(seconds=1), powertools("ingest", "request", t, "req-2")))
    put(aws, "reactor", (t + timedelta(seconds=2), powertools("reactor", "alert raised", t, "req-1")))
    logs = Context(None, "dynafold-dev-", False).aws_root().function_logs  # as the composition root builds it
    assert isinstance(logs, CloudWatchFunctionLogs)
    assert logs.log_groups["reactor"] == "/aws/lambda/dynafold-dev-reactor"
    reader = logs.reader((), NOW - timedelta(minutes=10), "req-1")
    first = reader.poll()
    assert [(line.function, "req-1" in line.text) for line in first] == [("ingest", True), ("reactor", True)]
    assert reader.poll() == []  # nothing new
    later = t + timedelta(seconds=2)  # the same millisecond as the last line read: still new
    put(aws, "reactor", (later, powertools("reactor", "delivery job enqueued", later, "req-1")))
    assert [line.text for line in reader.poll()] == [powertools("reactor", "delivery job enqueued", later, "req-1")]


def test_dynafold_logs_on_aws(aws, capsys):
    t = NOW - timedelta(minutes=30)
    put(aws, "delivery-worker", (t, powertools("delivery-worker", "delivery job done", t, "req-9")))
    assert main(["logs", "--on-aws", "--table-prefix", "dynafold-dev-", "--since", "1h", "--json"]) == 0
    [line] = json.loads(capsys.readouterr().out)
    assert (line["function"], line["record"]["correlation_id"]) == ("delivery-worker", "req-9")
    assert main(["logs", "--on-aws", "--table-prefix", "dynafold-dev-"]) == 0  # default: the last 10 minutes
    assert "(no log lines since" in capsys.readouterr().out


def test_local_files_read_once_each_line_and_wait_for_a_line_being_written(tmp_path):
    logs = local_function_logs(tmp_path)
    t = NOW - timedelta(minutes=1)
    (tmp_path / "dynafold-reactor.log").write_text(
        powertools("reactor", "old", NOW - timedelta(hours=2), "req-1") + "\n"
        + powertools("reactor", "alert raised", t, "req-1") + "\n" + "a plain line\n" + '{"level": "INF')
    (tmp_path / "dynafold-ingest.log").write_text(powertools("ingest", "request", t - timedelta(seconds=1), "req-1") + "\n")
    reader = logs.reader((), NOW - timedelta(minutes=10), None)
    lines = reader.poll()
    assert [(line.function, line.text[:20]) for line in lines] == [
        ("ingest", lines[0].text[:20]), ("reactor", lines[1].text[:20]), ("reactor", "a plain line")]
    assert lines[2].time == lines[1].time  # a plain line takes the time of the line before it
    with (tmp_path / "dynafold-reactor.log").open("a") as handle:
        handle.write('O", "message": "done", "timestamp": "' + NOW.strftime("%Y-%m-%d %H:%M:%S,000+0000") + '"}\n')
    [finished] = reader.poll()
    assert json.loads(finished.text)["message"] == "done"
    assert logs.reader(("reactor",), NOW - timedelta(minutes=10), "nothing-like-this").poll() == []


@pytest.mark.parametrize("argv, fragment", [
    (["logs", "--function", "nope"], "unknown function 'nope'"),
    (["logs", "--since", "yesterday"], "invalid --since"),
    (["logs", "--correlation", 'a"b'], "invalid --correlation"),
    (["logs", "--follow", "--json"], "give one of them"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_follow_prints_new_lines_and_ends_cleanly_on_ctrl_c(tmp_path):
    logs = tmp_path / ".dynafold" / "logs"
    logs.mkdir(parents=True)
    # The lines' time is the real now, not the module's: `logs` shows the last 10 minutes by default,
    # and a suite can reach this test more than 10 minutes after importing the module (the follower
    # then waited forever for a line it filters out).
    now = datetime.now(timezone.utc).replace(microsecond=0)
    (logs / "dynafold-reactor.log").write_text(powertools("reactor", "first", now, "req-1") + "\n")
    follower = subprocess.Popen([sys.executable, "-m", "processors.cli.main", "logs", "--follow"], cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert '"first"' in follower.stdout.readline()  # waits for the process to be following
        with (logs / "dynafold-reactor.log").open("a") as handle:
            handle.write(powertools("reactor", "second", now, "req-1") + "\n")
        assert '"second"' in follower.stdout.readline()
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=20)
    finally:
        follower.kill()
    assert follower.returncode == 130 and out == ""
    assert err.strip().splitlines() == ["dynafold: stopped following the logs (interrupted)"]
