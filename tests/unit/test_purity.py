"""events/ and projections/ are pure, except their DynamoDB modules.

Every other module there (the catalogue, the envelope, the decisions, the folds, the view
packages' row types and questions, the reactor's rules) must not import boto3/botocore, a
DynamoDB module, or the imperative shell (processors/); so it runs without AWS, and the DynamoDB
modules stay few and known. Imports inside functions count too (the whole AST is walked).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = ("events", "projections")

# The modules of events/ and projections/ that talk to DynamoDB (or import one that does).
DYNAMODB_MODULES = frozenset({
    "events.store",  # append / read / hash chain
    "events.log_index",  # the log's index items
    "events.scan",  # parallel scans of the event table
    "events.raw_items",  # DynamoDB reads decoded by json.loads instead of botocore's parser
    "projections.view_store",  # conditional writes of one stream's rows
    "projections.view_tables",  # bulk writes and scans of whole view tables (rebuilds)
    "projections.queries",  # ViewQueries: the views' questions read over DynamoDB
})
FORBIDDEN_ROOTS = ("boto3", "botocore", "processors")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PURE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found.append((_module_name(path), path))
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every module ``path`` imports, by absolute name (``from a import b`` counts a and a.b)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _violations(module: str, imported: set[str]) -> list[str]:
    bad = []
    for name in sorted(imported):
        if name.split(".")[0] in FORBIDDEN_ROOTS or name in DYNAMODB_MODULES:
            bad.append(name)
    return bad


PURE = [(name, path) for name, path in _modules() if name not in DYNAMODB_MODULES]


def test_the_dynamodb_modules_exist():
    names = {name for name, _ in _modules()}
    assert names >= DYNAMODB_MODULES, f"listed but missing: {sorted(DYNAMODB_MODULES - names)}"


@pytest.mark.parametrize("module,path", PURE, ids=[name for name, _ in PURE])
def test_pure_module_imports_no_io(module, path):
    bad = _violations(module, _imports(module, path))
    assert not bad, f"{module} is pure but imports {', '.join(bad)}: move the I/O into a DynamoDB module"


def test_the_check_catches_a_violation(tmp_path):
    """The walk sees imports inside functions, relative imports and from-imports of a DynamoDB module."""
    source = tmp_path / "fold.py"
    source.write_text(
        "from projections import view_store\n"
        "def f():\n"
        "    import botocore.exceptions\n"
        "    from ..queries import ViewQueries\n"
    )
    imported = _imports("projections.inventory.fold", source)
    assert _violations("projections.inventory.fold", imported) == [
        "botocore.exceptions", "projections.queries", "projections.view_store"]
