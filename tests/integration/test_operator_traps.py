"""Issue 19 §B: ordinary operator commands that left traps behind. Each test here failed before
its fix: a switch that broke `make run`, not-found answered as success, rebuilds without a lock,
Ctrl-C tracebacks, --json mixed with logs, tracebacks for a missing template, an export that
blocked its own retry, view names that differed between commands, help that named a missing flag."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from processors.cli.main import build_parser, main
from processors.local.stack import LocalStack
from processors.local.tables import local_tables, local_versions
from processors.operations.rebuild_lock import RebuildLock
from projections.registry import UNITS
from tests.integration.sample_history import sample_history

PREFIX = "test-"


@pytest.fixture
def cli(local_dynamo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.chdir(tmp_path)  # the default state directory, .dynafold, is the test's own

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", PREFIX])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def live_history(local_dynamo, state_dir: Path, capsys) -> LocalStack:
    """The sample history appended and processed live into the views (what a rebuild compares with);
    the handlers' output (their JSON logs and EMF, printed on stdout as on Lambda) is dropped."""
    client = local_dynamo.client
    stack = LocalStack(local_dynamo.endpoint_url, local_tables(PREFIX, settings=local_versions(state_dir, client, PREFIX)),
                       state_dir, access_key=local_dynamo.access_key)
    for append in sample_history():
        stack.store.append(append.stream, list(append.events), idempotency_key=append.idempotency_key)
    stack.drain()
    capsys.readouterr()
    return stack


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- make run after a switch

def test_make_run_succeeds_after_a_rebuild_switch(cli, local_dynamo, tmp_path, monkeypatch, capsys):
    """`rebuild all --switch` wrote .dynafold/views.json, which every fresh engine then followed:
    `make run`'s in-memory one dropped every record (an alert per failure, each failing too) and
    ended in a TimeoutError traceback. The switch belongs to the database it was made on."""
    code, out, err = cli("rebuild", "all", "--switch")
    assert code == 0 and "switched: alerts -> v2" in out, err
    assert json.loads((tmp_path / ".dynafold" / "views.json").read_text())["versions"]["inventory"] == "v2"
    assert main(["demo"]) == 0  # what `make run` runs
    out, _ = capsys.readouterr()
    assert "hash chains:" in out and "all intact" in out
    assert "PROD-001" in out  # the demo's views were built
    code, out, _ = cli("views", "list", "--json")  # and the switched stack still follows its switch
    assert {row["family"]: row["version"] for row in json.loads(out) if row["active"]}["inventory"] == "v2"


def test_a_switch_on_one_database_is_not_followed_or_overwritten_by_another(local_dynamo, tmp_path):
    first, second = local_dynamo, local_dynamo.fresh()
    mine = local_versions(tmp_path, first.client, PREFIX)
    mine.write({"inventory": "v2"})
    theirs = local_versions(tmp_path, second.client, PREFIX)
    assert mine.read() == {"inventory": "v2"} and theirs.read() == {}
    assert local_tables(PREFIX, settings=theirs).views["inventory"] == f"{PREFIX}inventory-v1"
    with pytest.raises(Exception, match="describes another database"):
        theirs.write({"inventory": "v3"})
    assert mine.read() == {"inventory": "v2"}


# ----------------------------------------------------------------------------- not found

@pytest.mark.parametrize("argv, what", [
    (["audit", "verify", "sku:NOPE"], "stream 'sku:NOPE'"),
    (["audit", "stream", "sku:NOPE"], "stream 'sku:NOPE'"),
    (["read", "sku:NOPE"], "stream 'sku:NOPE'"),
    (["shopify", "item", "999"], "inventory item 999"),
])
def test_something_that_does_not_exist_is_not_found_exit_4_never_ok(cli, argv, what):
    """`audit verify sku:NOPE` printed "OK ... intact" and `audit stream sku:NOPE` "(none)", exit 0."""
    code, out, err = cli(*argv)
    assert (code, out) == (4, "")
    assert one_line(err).startswith(f"dynafold: not found: {what}")
    code, out, err = cli(*argv, "--json")
    assert (code, out) == (4, "")


# ----------------------------------------------------------------------------- the rebuild lock

def test_a_second_rebuild_of_a_view_is_refused_naming_the_holder(cli, local_dynamo):
    held = RebuildLock(local_dynamo.client, local_dynamo.names.idempotency, ["inventory"],
                       holder="`dynafold rebuild inventory` (pid 4242 on laptop)")
    held.acquire()
    for view in ("inventory", "all"):
        code, out, err = cli("rebuild", view, "--switch")
        assert (code, out) == (3, "")
        assert "a rebuild of inventory is running: `dynafold rebuild inventory` (pid 4242 on laptop)" in one_line(err)
    assert not (Path(".dynafold") / "views.json").exists()  # nothing switched, nothing started
    code, _, err = cli("views", "activate", "inventory", "v1")  # nor a switch by hand
    assert code == 3 and "pid 4242" in err
    assert cli("rebuild", "pending-errors")[0] == 0  # another view is free
    held.release()
    assert cli("rebuild", "inventory")[0] == 0
    # the lock is given back at the end: a third rebuild runs
    assert cli("rebuild", "inventory")[0] == 0


def test_a_lease_that_ran_out_is_taken_over_and_the_stalled_holder_cannot_switch(local_dynamo):
    now = [1_000_000.0]
    table = local_dynamo.names.idempotency
    crashed = RebuildLock(local_dynamo.client, table, ["alerts"], holder="crashed", clock=lambda: now[0])
    crashed.acquire()
    later = RebuildLock(local_dynamo.client, table, ["alerts"], holder="later", clock=lambda: now[0])
    with pytest.raises(Exception, match="running: crashed"):
        later.acquire()
    now[0] += 61  # the crashed holder's lease (60 s) ran out
    later.acquire()
    crashed._renew_until(_stop_after_one_turn())
    with pytest.raises(Exception, match="not switched: the lock on alerts was taken over"):
        crashed.check()


def _stop_after_one_turn():
    class OneTurn:
        turns = 0

        def wait(self, _seconds):
            self.turns += 1
            return self.turns > 1

    return OneTurn()


def test_on_aws_the_execution_holds_the_views_until_it_ends(cli, local_dynamo, monkeypatch):
    """The lock passes to the execution: a second `--on-aws` rebuild (or a local one) is refused while
    DescribeExecution says RUNNING, and goes ahead once it has ended."""
    from processors.cli import rebuild as rebuild_cli
    from tests.integration.test_rebuild_on_aws import EXECUTION, MACHINE_ARN, StubbedStepFunctions

    sfn = StubbedStepFunctions()
    monkeypatch.setattr(rebuild_cli, "_sfn", lambda: sfn.client)
    sfn.start()
    sfn.poll("RUNNING")
    sfn.interrupt_at_poll(2)  # Ctrl-C while following: the execution keeps running on AWS
    argv = ("rebuild", "inventory", "--on-aws", "--segments", "8", "--state-machine", MACHINE_ARN,
            "--poll-seconds", "0")
    assert cli(*argv)[0] == 0

    sfn.stubber.add_response("describe_execution", {"executionArn": EXECUTION, "stateMachineArn": MACHINE_ARN,
                                                    "status": "RUNNING", "startDate": time_started()},
                             {"executionArn": EXECUTION})
    code, _, err = cli(*argv)
    assert code == 3 and f"a rebuild of inventory is running: execution {EXECUTION}" in one_line(err)
    code, _, err = cli("rebuild", "inventory")  # nor locally
    assert code == 3 and f"execution {EXECUTION}" in err

    sfn.stubber.add_response("describe_execution", {"executionArn": EXECUTION, "stateMachineArn": MACHINE_ARN,
                                                    "status": "SUCCEEDED", "startDate": time_started()},
                             {"executionArn": EXECUTION})
    sfn.start()
    sfn.poll("RUNNING")
    sfn.interrupt_at_poll(3)  # the lock's DescribeExecution, one poll, then Ctrl-C
    assert cli(*argv)[0] == 0  # it ended: the view was taken over
    sfn.stubber.assert_no_pending_responses()


def time_started():
    from tests.integration.test_rebuild_on_aws import STARTED

    return STARTED


# ----------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_during_a_rebuild_is_one_line_exit_130_and_the_same_command_resumes(cli, local_dynamo, tmp_path,
                                                                                  monkeypatch, capsys):
    from processors.operations import progress

    live_history(local_dynamo, tmp_path / ".dynafold", capsys)
    advance, calls = progress.Progress.advance, []

    def interrupted_after_the_first_slice(self, count):
        calls.append(count)
        advance(self, count)
        if len(calls) == 2:  # the start (0), then the first slice recorded
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.Progress, "advance", interrupted_after_the_first_slice)
    code, out, err = cli("rebuild", "inventory", "--segments", "4")
    assert code == 130 and "EQUAL" not in out
    line = err.strip().splitlines()[-1]  # after the progress bar's lines
    assert re.fullmatch(r"dynafold: interrupted at the fill \(\d of 4 segments filled, [\d,]+ events read\); "
                        r"run the same command to resume", line), err
    assert "Traceback" not in err
    monkeypatch.setattr(progress.Progress, "advance", advance)
    code, out, err = cli("rebuild", "inventory", "--segments", "4")
    assert code == 0 and "EQUAL" in out and "resuming:" in out, err


def test_ctrl_c_with_worker_processes_stops_them_quietly_and_resumes(local_dynamo, tmp_path, capsys):
    """A real SIGINT to the process group, as a terminal sends it: the worker processes printed
    tracebacks of their own; now they leave it to the parent, which records where each stopped."""
    live_history(local_dynamo, tmp_path / ".dynafold", capsys)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": local_dynamo.access_key, "AWS_SECRET_ACCESS_KEY": "local"}
    argv = [sys.executable, "-m", "processors.cli.main", "rebuild", "all", "--workers", "2", "--segments", "4",
            "--max-write-rate", "4", "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", PREFIX]
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(repo)
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    progress_file = tmp_path / ".dynafold" / "rebuilds" / f"{PREFIX}alerts+delivery-status+inventory+pending-errors.json"
    while not progress_file.exists() and process.poll() is None:
        time.sleep(0.1)
    time.sleep(1.0)  # into the fill (it writes 4 rows a second)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].endswith("; run the same command to resume")
    resumed = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0 and "EQUAL" in resumed.stdout, resumed.stderr
    assert "resuming:" in resumed.stdout


def test_ctrl_c_during_an_import_is_one_line_exit_130_and_the_same_command_resumes(cli, local_dynamo, tmp_path,
                                                                                  monkeypatch):
    from events.store import EventStore

    store = local_dynamo.store()
    for append in sample_history():
        store.append(append.stream, list(append.events), idempotency_key=append.idempotency_key)
    assert cli("audit", "export", "-o", "log.jsonl")[0] == 0
    total = len((tmp_path / "log.jsonl").read_text().splitlines())
    target = local_dynamo.fresh()  # another store to import into
    real, calls = EventStore.append_stored, []

    def interrupted(self, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(EventStore, "append_stored", interrupted)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", target.access_key)
    code, out, err = cli("audit", "import", "log.jsonl")
    assert (code, out) == (130, "")
    assert one_line(err) == (f"dynafold: interrupted at event 3 of {total} from log.jsonl (3 imported so far); "
                             "run the same command to resume")
    monkeypatch.setattr(EventStore, "append_stored", real)
    code, out, _ = cli("audit", "import", "log.jsonl", "--json")
    assert code == 0 and json.loads(out) == {"imported": total - 3, "already_present": 3, "streams": json.loads(out)[
        "streams"]}


# ----------------------------------------------------------------------------- output and errors

# Every command with the arguments it runs with here; a new command must be added (the strong form of
# "--json is one JSON document on stdout, logs on stderr").
JSON_RUNS: list[tuple[str, ...]] = [
    ("tables", "create"),
    ("rebuild", "inventory", "--dry-run"),
    ("rebuild", "inventory"),
    ("views", "list"),
    ("views", "activate", "inventory", "v1"),
    ("views", "drop", "inventory", "v2"),
    ("append", "sku:J-1", "dynafold.inventory.physical_count_set.v1", "--data", '{"sku": "J-1", "physical": 4}',
     "--correlation-id", "corr-j"),
    ("read", "sku:J-1"),
    ("types",),
    ("monitor", "run", "--now", "2030-01-01T00:00:00Z"),
    ("outbox",),
    ("query", "all"),
    ("query", "inventory"),
    ("query", "inventory-returns", "J-1"),
    ("query", "pending-errors"),
    ("query", "delivery-status", "--status", "SUCCESS"),
    ("query", "alerts"),
    ("targets", "status", "https://example.com/hook"),
    ("targets", "enable", "https://example.com/hook"),
    ("shopify", "map", "4711", "J-1"),
    ("shopify", "import", "items.csv"),
    ("shopify", "item", "4711"),
    ("audit", "stream", "sku:J-1"),
    ("audit", "search", "--type", "dynafold.inventory.physical_count_set.v1"),
    ("audit", "trace", "corr-j"),
    ("audit", "verify", "--all"),
    ("audit", "export", "-o", "export.jsonl"),
    ("audit", "import", "export.jsonl"),
    ("check-history",),
    ("cost",),
    ("explain", "sku", "PROD-001"),
    ("explain", "order", "SO-000019"),
    ("explain", "delivery", "msg-0001"),
    ("deliveries", "redrive", "--dead-letters", "--dry-run"),
    ("alerts", "list"),
    ("alerts", "read", "--severity", "info", "--dry-run"),
    ("logs", "--since", "1h"),
    ("shopify", "adopt", "--all", "--dry-run"),
    ("status",),
    ("append", "delivery:acme:m-1", "dynafold.delivery.message_received.v1", "--data",
     '{"sender_id": "acme", "message_id": "m-1", "target_url": "https://hooks.example.com/x", '
     '"payload": {"email": "ann@example.com"}, "data_subject": "C-42"}'),
    ("personal-data", "sender:acme:C-42"),
    ("forget", "sender:acme:C-42", "--reason", "erasure request", "--dry-run"),
]
NOT_HERE = {  # commands whose --json is checked elsewhere, and why
    "up": "runs in the foreground: tests/integration/test_up.py parses its --json",
    "demo": "its own engine and story: tests/integration/test_cli.py parses its --json",
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:
                    continue  # an alias
                seen.add(id(sub))
                found.extend(leaf_commands(sub, (*prefix, name)))
    return found or [prefix]


def test_every_command_with_json_prints_one_json_document_and_nothing_else(cli, local_dynamo, tmp_path, capsys):
    """`monitor run --json` printed the monitor's log lines before its JSON."""
    commands = set(leaf_commands(build_parser()))
    covered = {command for command in commands
               if any(run[:len(command)] == command for run in JSON_RUNS) or " ".join(command) in NOT_HERE}
    assert covered == commands, f"add {sorted(commands - covered)} to JSON_RUNS"
    live_history(local_dynamo, tmp_path / ".dynafold", capsys)  # live views: the rebuild compares EQUAL
    (tmp_path / "items.csv").write_text("inventory_item_id,sku\n4712,J-2\n")
    for run in JSON_RUNS:
        code, out, err = cli(*run, "--json")
        assert code in (0, 1), (run, err)  # 1: `status` needs attention, `adopt --all` refused some
        try:
            json.loads(out)
        except ValueError:
            pytest.fail(f"dynafold {' '.join(run)} --json printed more than one JSON document:\n{out[:2000]}")


def test_cost_with_a_missing_or_broken_template_is_one_line_exit_2(cli, tmp_path):
    (tmp_path / "broken.yaml").write_text("Resources: [unclosed\n")
    (tmp_path / "other.yaml").write_text("Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n")
    for template, fragment in (("/nope.yaml", "no such file"), ("broken.yaml", "cannot read it"),
                               ("other.yaml", "not a dynafold SAM template")):
        code, out, err = cli("cost", "--template", template)
        assert (code, out) == (2, "") and fragment in one_line(err), err


def test_an_export_that_fails_leaves_no_file_to_block_the_retry(cli, local_dynamo, tmp_path, monkeypatch, capsys):
    from processors.local.engine import free_port

    down = f"http://127.0.0.1:{free_port()}"
    assert main(["audit", "export", "-o", "log.jsonl", "--endpoint-url", down, "--table-prefix", PREFIX]) == 1
    assert "cannot reach DynamoDB" in one_line(capsys.readouterr().err)
    assert list(tmp_path.glob("*log.jsonl*")) == []
    local_dynamo.store().append("sku:E-1", [_count("E-1")])
    code, _, err = cli("audit", "export", "-o", "log.jsonl")  # the retry, without --overwrite
    assert code == 0 and "exported 1 events" in err


def _count(sku: str):
    from events.envelope import NewEvent

    return NewEvent("dynafold.inventory.physical_count_set.v1", {"sku": sku, "physical": 1})


# ----------------------------------------------------------------------------- names and help

def test_every_query_command_is_named_as_its_view_or_table_family_and_rebuild_takes_those_names(cli):
    """`rebuild delivery-status` against `query delivery`: one name per view, from the registry."""
    for unit in UNITS:
        for command in unit.commands:
            assert command.name in (unit.name, *unit.view.families), command.name
    for name in ("delivery-status", "delivery", "deliveries", "inventory-returns", "returns"):
        code, out, err = cli("rebuild", name, "--dry-run", "--json")
        assert code == 0, err
        assert json.loads(out)["views"] in (["delivery-status"], ["inventory"])
    code, _, err = cli("rebuild", "nope", "--dry-run")
    assert code == 2 and "one of inventory, pending-errors, delivery-status, alerts, or all" in err


def test_every_flag_the_dry_run_mentions_exists(cli):
    """The dry run recommended `--settle-seconds`, which did not exist."""
    rebuild = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    flags = set(rebuild.choices["rebuild"]._option_string_actions)
    for argv in (("rebuild", "all", "--dry-run"), ("rebuild", "all", "--dry-run", "--on-aws", "--switch",
                                                    "--assume-events", "100000000", "--segments", "2")):
        code, out, _ = cli(*argv)
        mentioned = set(re.findall(r"(--[a-z][a-z-]+)", out))
        assert code == 0 and mentioned and mentioned <= flags, mentioned - flags
    assert cli("rebuild", "inventory", "--settle-seconds", "5")[0] == 0


def test_a_rebuild_without_switch_says_what_it_left_and_how_to_drop_it(cli):
    code, out, _ = cli("rebuild", "inventory")
    assert code == 0
    assert f"not switched (no --switch: the live tables stay active); the rebuilt tables stay: {PREFIX}inventory-" \
           f"returns-v2, {PREFIX}inventory-v2" in out
    [drop] = re.findall(r"`(dynafold views drop [^`]+)`", out)
    assert drop == "dynafold views drop inventory v2"
    code, out, _ = cli(*drop.split()[1:])
    assert code == 0 and f"dropped {PREFIX}inventory-v2" in out and f"dropped {PREFIX}inventory-returns-v2" in out


def test_a_switch_says_how_to_drop_the_old_tables(cli):
    code, out, _ = cli("rebuild", "inventory", "--switch")
    assert code == 0
    assert re.findall(r"`(dynafold views drop [^`]+)`", out) == ["dynafold views drop inventory v1",
                                                                 "dynafold views drop inventory-returns v1"]


def test_an_unfinished_rebuild_of_another_database_is_not_resumed_here(cli, local_dynamo, monkeypatch, tmp_path):
    from processors.operations import progress

    def interrupted(self, count):
        raise KeyboardInterrupt

    advance = progress.Progress.advance
    monkeypatch.setattr(progress.Progress, "advance", interrupted)
    assert cli("rebuild", "inventory")[0] == 130
    monkeypatch.setattr(progress.Progress, "advance", advance)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.fresh().access_key)  # another database, same state
    code, out, _ = cli("rebuild", "inventory")
    assert code == 0 and "resuming" not in out

