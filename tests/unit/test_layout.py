"""The folders say what may do what: the Lambda packages never reach the local runtime, the
operator tools or the CLI, and every function is built by the one composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROCESSORS = ROOT / "processors"
# What `make build-<Name>Function` ships (see LAMBDA_PACKAGES in the Makefile).
LAMBDA_PACKAGES = ("functions", "handlers", "services", "api", "console", "adapters", "telemetry", "wiring")
NOT_ON_LAMBDA = ("processors.local", "processors.cli", "processors.operations")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def lambda_modules() -> list[Path]:
    return sorted(p for package in LAMBDA_PACKAGES for p in (PROCESSORS / package).rglob("*.py"))


def test_the_makefile_ships_exactly_these_packages():
    makefile = (ROOT / "Makefile").read_text()
    assert f"LAMBDA_PACKAGES := {' '.join(LAMBDA_PACKAGES)}" in makefile
    on_disk = {p.name for p in PROCESSORS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert on_disk - set(LAMBDA_PACKAGES) == {"local", "cli", "operations"}, "a new package must pick a side"


@pytest.mark.parametrize("module", lambda_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_code_shipped_to_lambda_never_imports_the_local_runtime_operator_tools_or_cli(module):
    reached = {name for name in imported_modules(module) if name.startswith(NOT_ON_LAMBDA)}
    assert not reached, f"{module.relative_to(ROOT)} imports {sorted(reached)}, which is not shipped to Lambda"


def test_every_lambda_entry_point_is_built_by_the_composition_root():
    for module in sorted((PROCESSORS / "functions").glob("*.py")):
        if module.name == "__init__.py":
            continue
        tree = ast.parse(module.read_text())
        [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
        calls = [n for n in ast.walk(handler) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id == "lambda_handler"]
        assert calls, f"{module.name}: handler() must come from processors.wiring (lambda_handler)"
        assert "processors.wiring.aws.lambda_handler" in imported_modules(module)


def test_the_template_points_every_function_at_an_entry_point_module():
    from processors.operations.template import load_template

    resources = load_template()["Resources"]
    handlers = {r["Properties"]["Handler"] for r in resources.values()
                if r["Type"] == "AWS::Serverless::Function"}
    assert handlers and all(h.startswith("processors.functions.") for h in handlers), handlers


def all_modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("module", all_modules("processors", "events", "projections"), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_the_lambda_entry_points_or_the_cli_main(module):
    """The entry points ask the composition root for their handler, so the root (and everything it
    builds from) must not import them back: the handlers' shapes live in processors.handlers. The
    same one-way rule for the command line: main assembles the command modules, which share
    processors.cli.context and never import main."""
    reached = {name for name in imported_modules(module)
               if name.startswith("processors.functions") or name.startswith("processors.cli.main")}
    if module.parent.name == "functions":
        reached -= {"processors.functions"}
    assert not reached, f"{module.relative_to(ROOT)} imports {sorted(reached)}"
