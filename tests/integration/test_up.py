"""`dynafold up` owns its state directory: it records its engine and the credentials that select its
database, so other commands (and other shells) reach the same data; it keeps its ports from run to
run; a taken port or a second `up` on the same directory is one line, not a traceback or a silent
attachment to someone else's engine; the demo refuses to run beside it (issue 19 §B)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from processors.cli.main import main
from processors.local.stack_record import is_running

REPO = Path(__file__).resolve().parents[2]


class Up:
    """`dynafold up --in-memory --json` (or another command that stays) in its own process, as a
    developer's second shell sees it."""

    def __init__(self, state_dir: Path, command: tuple[str, ...] = ("up", "--in-memory", "--monitor-interval",
                                                                    "3600")) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        argv = [sys.executable, "-m", "processors.cli.main", *command, "--state-dir", str(state_dir), "--json"]
        self.process = subprocess.Popen(argv, cwd=state_dir.parent, env={**env, "PYTHONPATH": str(REPO)},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        text = ""
        deadline = threading.Timer(180, self.process.kill)  # a stack that never says it runs fails, not hangs
        deadline.start()
        try:
            for line in self.process.stdout:  # --json: one document, printed once the stack runs
                text += line
                try:
                    self.info = json.loads(text)
                    break
                except ValueError:
                    continue
            else:
                raise AssertionError(f"{command[0]} ended before it ran: {text}{self.process.communicate()[1]}")
        finally:
            deadline.cancel()

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0
        return out


@pytest.fixture(scope="module")
def stack_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("up")


@pytest.fixture(scope="module")
def up(stack_home, dynamodb_local):  # dynamodb_local: the engine is fetched before the process needs it
    running = Up(stack_home / "state")
    yield running
    if running.process.poll() is None:
        running.stop()


def test_other_commands_use_the_stacks_engine_and_credentials_whatever_the_shell_says(up, stack_home, monkeypatch,
                                                                                      capsys):
    """A shell's AWS_ACCESS_KEY_ID selected another DynamoDB Local database ("create the tables
    first"); with nothing given the CLI went to AWS. Now it reads the stack's record, and says so."""
    state = str(stack_home / "state")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASOMEONEELSE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert main(["append", "sku:U-1", "dynafold.inventory.physical_count_set.v1", "--data",
                 '{"sku": "U-1", "physical": 3}', "--state-dir", state, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["versions"] == [1]
    assert err == f"dynafold: DynamoDB Local at {up.info['endpoint_url']} (in memory, `dynafold up` pid " \
                  f"{up.process.pid}), the stack of {state}\n"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", up.info["endpoint_url"])  # what the README used to say
    assert main(["read", "sku:U-1", "--state-dir", state, "--json"]) == 0
    assert [event["data"]["physical"] for event in json.loads(capsys.readouterr().out)] == [3]


def test_a_second_up_on_the_same_state_directory_is_refused(up, stack_home, capsys):
    assert main(["up", "--in-memory", "--state-dir", str(stack_home / "state")]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "is already running" in line and f"pid {up.process.pid}" in line and up.info["api_url"] in line


def test_a_taken_port_is_one_line_and_leaves_the_state_directory_free(up, tmp_path, capsys):
    """`--api-port` in use was an OSError traceback; an engine port in use is refused before Java
    starts (it used to attach to the engine already there)."""
    api_port = up.info["api_url"].rsplit(":", 1)[1]
    engine_port = up.info["endpoint_url"].rsplit(":", 1)[1]
    other = tmp_path / "other"
    for flag, port, says in (("--api-port", api_port, f"the HTTP API cannot listen on 127.0.0.1:{api_port}"),
                             ("--port", engine_port, f"could not bind port {engine_port}: it is in use")):
        assert main(["up", "--in-memory", "--state-dir", str(other), flag, port]) == 1
        [line] = capsys.readouterr().err.strip().splitlines()
        assert says in line
        assert not is_running(other)


def test_the_next_up_keeps_the_ports_of_the_last(tmp_path, dynamodb_local):
    """The engine port changed on every `up`, so an exported endpoint stopped working."""
    up = Up(tmp_path / "state")
    first = up.info
    assert up.stop() == ""  # --json: the one document was all of stdout
    again = Up(tmp_path / "state")
    try:
        assert (again.info["endpoint_url"], again.info["api_url"]) == (first["endpoint_url"], first["api_url"])
    finally:
        again.stop()


def test_the_demo_refuses_to_run_beside_a_running_stack_and_says_why(up, stack_home, capsys):
    """It dead-lettered all 9 deliveries (up's worker refuses plain-http loopback targets), then still
    told its "succeeds on retry" story."""
    code = main(["demo", "--endpoint-url", up.info["endpoint_url"], "--state-dir", str(stack_home / "state")])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    [line] = err.strip().splitlines()
    assert "runs its own consumers there" in line and "plain-http loopback targets" in line


def test_the_demo_can_stay_running_for_the_operator_tools(tmp_path, dynamodb_local, monkeypatch, capsys):
    """The README's operator section: the demo's traffic, then rebuild and audit on its data."""
    state = tmp_path / "state"
    demo = Up(state, ("demo", "--stay"))
    try:
        assert demo.info["chains_ok"]
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(variable, raising=False)
        assert main(["rebuild", "all", "--switch", "--state-dir", str(state)]) == 0
        out = capsys.readouterr().out
        assert "EQUAL: rebuilt rows match the live rows" in out and "switched: alerts -> v2" in out
        assert main(["audit", "verify", "--all", "--state-dir", str(state)]) == 0
        assert "every hash chain and version sequence intact" in capsys.readouterr().out
    finally:
        demo.stop()
