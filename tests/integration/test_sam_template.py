"""template.yaml through the SAM tooling, offline, from the SAM CLI's own venv.

Linted as SAM and, because cfn-lint only checks SAM properties against SAM's schema, expanded to
plain CloudFormation with aws-sam-translator and linted again; the expanded IAM is checked; and
`sam build` must produce artifacts whose handlers import with nothing but the artifact and layer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from processors.operations.artifact import HASH_BASED, ZIP_EPOCH, extract_like_lambda, pyc_flags, zip_like_sam
from processors.operations.template import load_template
from tests.template_helpers import (
    DYNAMODB_TABLE_ACTIONS,
    EVENT_MUTATIONS,
    EVENT_READ_ACTIONS,
    actions_on,
    from_cfn_json,
    refs,
    role_statements,
    samconfig_overrides,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SAM_VENV = Path(os.environ.get("DYNAFOLD_SAM_VENV", ROOT / ".venv-sam"))
FUNCTIONS = sorted(name for name, r in load_template()["Resources"].items()
                   if r["Type"] == "AWS::Serverless::Function")

pytestmark = pytest.mark.sam


def _tool(name: str) -> str:
    path = SAM_VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} missing: run `make test` (it builds the SAM tooling venv)")
    return str(path)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)


def _expand(source: Path, target: Path) -> None:
    done = _run(_tool("python"), str(HERE / "expand_sam.py"), str(source), str(target))
    assert done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_is_clean():
    done = _run(_tool("cfn-lint"), "template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_sam_validate_lint_is_clean():
    done = _run(_tool("sam"), "validate", "--lint", "--region", "us-east-1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


# --- expanded to plain CloudFormation --------------------------------------------------------------


@pytest.fixture(scope="module")
def expanded_path(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("expanded") / "template.json"
    _expand(ROOT / "template.yaml", target)
    return target


@pytest.fixture(scope="module")
def expanded(expanded_path) -> dict[str, Any]:
    return from_cfn_json(json.loads(expanded_path.read_text(encoding="utf-8")))


def test_expanded_template_is_lint_clean(expanded_path):
    done = _run(_tool("cfn-lint"), str(expanded_path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_expanded_lint_catches_errors_inside_sam_properties(tmp_path):
    """The reason for the expansion: these two pass `cfn-lint template.yaml` and `sam validate --lint`."""
    broken = (ROOT / "template.yaml").read_text(encoding="utf-8")
    broken = broken.replace("- ReportBatchItemFailures", "- ReportBatchItemFailure", 1)
    broken = broken.replace("Runtime: python3.13", "Runtime: python3.99", 1)
    (tmp_path / "template.yaml").write_text(broken, encoding="utf-8")
    _expand(tmp_path / "template.yaml", tmp_path / "template.json")
    done = _run(_tool("cfn-lint"), str(tmp_path / "template.json"))
    assert done.returncode != 0
    assert "'ReportBatchItemFailure' is not one of" in done.stdout
    assert "'python3.99' is not one of" in done.stdout


def lambda_roles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"
            and "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])}


def test_every_function_runs_under_a_role_that_denies_event_mutations(expanded):
    resources = expanded["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert sorted(functions) == FUNCTIONS
    roles = lambda_roles(expanded)
    for name, function in functions.items():
        [role] = refs(function["Properties"]["Role"])
        denied = actions_on(role_statements(expanded, roles[role]), "EventsTable", "Deny")
        assert denied >= EVENT_MUTATIONS, name
        allowed = actions_on(role_statements(expanded, roles[role]), "EventsTable")
        assert not allowed & EVENT_MUTATIONS, name


def test_event_action_classification_covers_every_dynamodb_action_aws_lists():
    """The Deny is complete only if no table-scoped action is left unclassified. The installed
    cfn-lint carries the Service Authorization Reference's action list: a new DynamoDB action
    fails here until tests/template_helpers.py says whether it mutates the log."""
    script = (
        "import json, pathlib, cfnlint\n"
        "path = pathlib.Path(cfnlint.__file__).parent / 'data/AdditionalSpecs/Policies.json'\n"
        "actions = json.loads(path.read_text())['dynamodb']['Actions']\n"
        "print(json.dumps(sorted(name for name, spec in actions.items() if spec.get('Resources'))))\n"
    )
    done = _run(_tool("python"), "-c", script)
    assert done.returncode == 0, done.stderr
    listed = set(json.loads(done.stdout))
    classified = {action.split(":", 1)[1].lower() for action in DYNAMODB_TABLE_ACTIONS}
    assert listed - classified == set(), "unclassified DynamoDB actions: decide whether they mutate the log"
    assert classified - listed == set(), "classified actions AWS no longer lists"


def test_projector_role_only_reads_the_event_table(expanded):
    role = lambda_roles(expanded)["ProjectorFunctionRole"]
    allowed = actions_on(role_statements(expanded, role), "EventsTable")
    assert allowed and allowed <= EVENT_READ_ACTIONS, allowed
    # Lambda's own stream polling is the AWS managed policy; nothing else may reach the table.
    assert "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole" in \
        role["Properties"]["ManagedPolicyArns"]


def test_on_failure_destinations_are_sendable(expanded):
    """Lambda sends a failed batch's record with the function's role: SAM must have granted it.
    (Only stream mappings have one; an SQS-fed function fails over through its queue's redrive.)"""
    streams = [(name, m) for name, m in expanded["Resources"].items()
               if m["Type"] == "AWS::Lambda::EventSourceMapping" and "EventsTable" in refs(m["Properties"]["EventSourceArn"])]
    assert len(streams) == 2
    for name, mapping in streams:
        destination = mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        [function] = refs(mapping["Properties"]["FunctionName"])
        [role] = refs(expanded["Resources"][function]["Properties"]["Role"])
        [queue] = refs(destination)
        assert "sqs:SendMessage" in actions_on(role_statements(expanded, expanded["Resources"][role]), queue), name


# --- samconfig.toml as the SAM CLI reads it ------------------------------------------------------------


def test_sam_cli_reads_samconfig_overrides_as_the_guard_tests_do():
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from samcli.lib.config.samconfig import SamConfig\n"
        "from samcli.cli.types import CfnParameterOverridesType\n"
        "config = SamConfig(Path('.'), 'samconfig.toml')\n"
        "print(json.dumps({env: CfnParameterOverridesType().convert(\n"
        "    config.get_all(['deploy'], 'parameters', env)['parameter_overrides'], None, None)\n"
        "    for env in ('default', 'prod')}))\n"
    )
    done = _run(_tool("python"), "-c", script)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"default": samconfig_overrides("default"), "prod": samconfig_overrides("prod")}


# --- sam build ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam-build") / "build"
    done = _run(_tool("sam"), "build", "--build-dir", str(build_dir))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return build_dir


def test_build_ships_each_function_only_its_code_and_the_dependencies_once(built):
    template = from_cfn_json(load_template(built / "template.yaml"))  # sam build writes long-form intrinsics
    layers = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"]
    [layer] = layers
    assert (built / layer["Properties"]["ContentUri"] / "python" / "pydantic_core").is_dir()
    assert list((built / layer["Properties"]["ContentUri"] / "python" / "pydantic_core").glob("*aarch64*.so"))
    for name in FUNCTIONS:
        code = built / template["Resources"][name]["Properties"]["CodeUri"]
        assert sorted(p.name for p in code.iterdir()) == ["events", "processors", "projections"], name
        # Only what runs on Lambda: no local runtime, no operator tools, no CLI, no demo.
        assert sorted(p.name for p in (code / "processors").iterdir() if p.name != "__pycache__") == [
            "__init__.py", "adapters", "api", "console", "functions", "handlers", "services", "telemetry", "wiring"], name
        assert shipped_bytecode_problems(code) == [], name


def shipped_bytecode_problems(directory: Path) -> list[str]:
    """Each module must ship unchecked-hash bytecode (PEP 552) for the runtime's Python: valid
    whatever the files' times (SAM's zip dates them 1980), never re-read or recompiled."""
    problems = []
    for source in sorted(directory.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists():
            problems.append(f"{source.relative_to(directory)}: no {cached.name}")
        elif pyc_flags(cached) != HASH_BASED:
            problems.append(f"{source.relative_to(directory)}: {cached.name} is not unchecked-hash "
                            f"(flags {pyc_flags(cached):#b})")
    return problems


def test_layer_ships_hash_based_bytecode(built):
    template = from_cfn_json(load_template(built / "template.yaml"))
    [layer] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"]
    assert shipped_bytecode_problems(built / layer["Properties"]["ContentUri"] / "python") == []


# --- the artifact as Lambda unpacks it ------------------------------------------------------------------


def sam_zip(source: Path, archive_stem: Path) -> Path:
    """Zip a build directory with the SAM CLI's own make_zip, as `sam deploy` uploads it."""
    script = ("import sys\nfrom samcli.lib.package.utils import make_zip\n"
              "print(make_zip(sys.argv[1], sys.argv[2]))\n")
    done = _run(_tool("python"), "-c", script, str(archive_stem), str(source))
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def built_dirs(built: Path, function: str) -> tuple[Path, Path]:
    """(the function's artifact, the layer's content directory) in a `sam build` output."""
    template = from_cfn_json(load_template(built / "template.yaml"))
    [layer_id] = [ref for layer in template["Globals"]["Function"]["Layers"] for ref in refs(layer)]
    return (built / template["Resources"][function]["Properties"]["CodeUri"],
            built / template["Resources"][layer_id]["Properties"]["ContentUri"])


@pytest.fixture(scope="module")
def unzipped(built, tmp_path_factory) -> tuple[Path, Path]:
    """The projector's artifact and the layer, SAM-zipped and unpacked with the zip's times."""
    work = tmp_path_factory.mktemp("unzipped")
    function_dir, layer_dir = built_dirs(built, "ProjectorFunction")
    function = extract_like_lambda(sam_zip(function_dir, work / "projector"), work / "task")
    layer = extract_like_lambda(sam_zip(layer_dir, work / "layer"), work / "opt")
    return function, layer / "python"


def import_like_lambda(function_dir: Path, layer_dir: Path, handler: str) -> dict[str, Any]:
    host_site = next(Path(p) for p in sys.path if (Path(p) / "pydantic_core").is_dir())
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(HERE / "import_built.py"), str(function_dir), str(layer_dir),
         str(host_site), handler], capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(done.stdout or "{}")
    assert done.returncode == 0 and report.get("callable") is True, done.stdout + done.stderr
    return report


def test_sam_zip_dates_every_entry_1980_and_the_replica_matches(tmp_path):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text("X = 1\n")
    (tmp_path / "src" / "top.py").write_text("Y = 2\n")
    ours = zip_like_sam(tmp_path / "src", tmp_path / "ours.zip")
    theirs = sam_zip(tmp_path / "src", tmp_path / "theirs")

    def entries(archive: Path) -> list[tuple[str, tuple[int, ...], int]]:
        with zipfile.ZipFile(archive) as zipped:
            return sorted((i.filename, i.date_time, i.external_attr) for i in zipped.infolist())

    assert entries(ours) == entries(theirs)
    assert {date for _, date, _ in entries(theirs)} == {ZIP_EPOCH}


def test_zipped_projector_imports_only_shipped_bytecode(unzipped):
    function_dir, layer_dir = unzipped
    assert (function_dir / "processors" / "functions" / "projector.py").stat().st_mtime < 400_000_000  # 1980
    report = import_like_lambda(function_dir, layer_dir, "processors.functions.projector.handler")
    assert report["outside"] == []
    assert report["compiled"] == [], "compiled from source at import: shipped bytecode missing or stale"


def test_timestamp_bytecode_goes_stale_in_a_sam_zip(built, unzipped, tmp_path):
    """Why the build writes hash-based .pyc: pip's and compileall's default (timestamp) bytecode
    records the source's build-time mtime, which the zip replaces by 1980."""
    function_dir, _ = built_dirs(built, "ProjectorFunction")
    copy = tmp_path / "timestamped"
    shutil.copytree(function_dir, copy)
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", "-f", "--invalidation-mode", "timestamp",
                           str(copy)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    task = extract_like_lambda(zip_like_sam(copy, tmp_path / "timestamped.zip"), tmp_path / "task")
    report = import_like_lambda(task, unzipped[1], "processors.functions.projector.handler")
    assert "processors/functions/projector.py" in report["compiled"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_built_function_imports_its_handler(built, function):
    template = from_cfn_json(load_template(built / "template.yaml"))
    properties = template["Resources"][function]["Properties"]
    [layer_id] = [ref for layer in template["Globals"]["Function"]["Layers"] for ref in refs(layer)]
    layer_dir = built / template["Resources"][layer_id]["Properties"]["ContentUri"] / "python"
    host_site = next(Path(p) for p in sys.path if (Path(p) / "pydantic_core").is_dir())
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(HERE / "import_built.py"), str(built / properties["CodeUri"]),
         str(layer_dir), str(host_site), properties["Handler"]],
        capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(done.stdout or "{}")
    assert done.returncode == 0 and report.get("callable") is True, done.stdout + done.stderr
    assert report["outside"] == [], "imported from outside the artifact and layer"
    # Collaborators are imported where they are built: ingest reaches projections only per request.
    assert "processors" in report["from_function"]
    assert set(report["from_function"]) <= {"events", "processors", "projections"}
