"""The Lambda layer is built from a lock file with hashes, and the lock is the whole story.

`make lock` compiles pyproject.toml's runtime dependencies for the Lambda platform (python3.13,
manylinux2014 aarch64) with `uv pip compile --generate-hashes` into requirements.lock; the
Makefile's build-DependenciesLayer installs it with `pip install --require-hashes`. An unpinned or
unhashed line, or a runtime dependency the lock does not cover, fails here before a deploy.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\=][^\s;\\]*)(?P<rest>.*)$")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def lock_entries(text: str) -> list[str]:
    """One string per requirement: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def check_entry(entry: str) -> tuple[str, str]:
    """(canonical name, version) of a pinned, hashed line; ValueError naming what is wrong otherwise."""
    match = PINNED.match(entry)
    if match is None:
        raise ValueError(f"not pinned with ==: {entry.split()[0]!r}")
    if not HASH.search(match["rest"]):
        raise ValueError(f"no --hash for {match['name']}=={match['version']}")
    return canonicalize_name(match["name"]), match["version"]


def locked() -> dict[str, str]:
    return dict(check_entry(entry) for entry in lock_entries(LOCK.read_text(encoding="utf-8")))


def runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


@pytest.mark.parametrize("line,problem", [
    ("boto3>=1.35", "not pinned"),
    ("boto3", "not pinned"),
    ("boto3==1.44.8", "no --hash"),
    ("boto3===1.44.8 --hash=sha256:" + "0" * 64, "not pinned"),
])
def test_an_unpinned_or_unhashed_line_is_refused(line, problem):
    with pytest.raises(ValueError, match=problem):
        check_entry(line)


def test_every_lock_line_is_pinned_with_a_hash():
    assert LOCK.exists(), "requirements.lock is missing: `make lock`"
    assert locked()  # check_entry raises on the first bad line


def test_the_lock_covers_every_runtime_dependency_at_an_allowed_version():
    pins = locked()
    for requirement in runtime_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is a runtime dependency the lock does not pin: `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"lock pins {name}=={pins[name]}, pyproject asks {requirement.specifier}: `make lock`"


def test_the_layer_is_installed_from_the_lock_with_hash_checking():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("build-DependenciesLayer:", 1)[1].split("\n\n", 1)[0]
    assert "--require-hashes" in recipe and "-r requirements.lock" in recipe
    assert "--platform manylinux2014_aarch64" in recipe and "--python-version 3.13" in recipe
    assert not (ROOT / "requirements.txt").exists(), "one input (pyproject.toml), one lock (requirements.lock)"
