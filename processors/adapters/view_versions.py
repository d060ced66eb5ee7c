"""Which version of each view table family is active, and where that is configured.

Locally: ``.dynafold/views.json`` (family -> version). On AWS: an SSM parameter whose name is in
``VIEW_VERSIONS_PARAMETER`` (the same JSON). `dynafold rebuild --switch` writes it; handlers and
queries read it through ``ActiveViewTables``, a mapping that follows a switch without a redeploy
or a restart (the SSM value is cached for ``max_age`` seconds, the local file by its mtime).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from events.errors import DynafoldError

PARAMETER_ENV = "VIEW_VERSIONS_PARAMETER"
_VERSION_SUFFIX = re.compile(r"-v[0-9]+$")

Versions = dict[str, str]


def with_version(table_name: str, version: str) -> str:
    """``stack-inventory-v1`` at ``v2`` -> ``stack-inventory-v2``."""
    if not _VERSION_SUFFIX.search(table_name):
        raise ValueError(f"table {table_name!r} carries no -v<N> version")
    return _VERSION_SUFFIX.sub(f"-{version}", table_name)


class ActiveViewTables(Mapping[str, str]):
    """family -> physical table name: the deployed (template) names, moved to the active versions."""

    def __init__(self, deployed: Mapping[str, str], versions: Callable[[], Mapping[str, str]],
                 source: Any = None) -> None:
        self._deployed = dict(deployed)
        self._versions = versions
        self.source = source  # where a switch writes what ``versions`` reads (LocalVersions, SsmVersions)

    def __getitem__(self, family: str) -> str:
        name = self._deployed[family]
        version = self._versions().get(family)
        return with_version(name, version) if version else name

    def __iter__(self) -> Iterator[str]:
        return iter(self._deployed)

    def __len__(self) -> int:
        return len(self._deployed)


class ForeignState(DynafoldError):
    """A local state file describes another database than the one in use."""


class LocalVersions:
    """The local settings file; re-read only when it changes.

    Locally the file stands in for the stack's SSM parameter, and like the parameter it belongs to
    one stack: with ``database`` (the identity of the database in use, see
    processors/local/tables.py) it records the database its versions describe, and a file written
    for another database (another engine, an in-memory run, another access key) is not followed:
    its tables do not exist here. Without ``database`` the file is followed as it is (tests)."""

    def __init__(self, path: Path, database: Callable[[], str | None] | None = None) -> None:
        self.path = path
        self._database = database
        self._identity: str | None = None
        self._cache: tuple[float, str | None, Versions] | None = None

    def _current_database(self) -> str | None:
        if self._identity is None and self._database is not None:
            self._identity = self._database()  # None while the database has no tables: asked again
        return self._identity

    def _load(self) -> tuple[str | None, Versions]:
        """(the database the file describes, its versions); a missing file describes nothing."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return None, {}
        if self._cache is None or self._cache[0] != mtime:
            data = dict(json.loads(self.path.read_text()))
            if isinstance(data.get("versions"), dict):
                self._cache = (mtime, data.get("database"), dict(data["versions"]))
            else:  # the flat form written before files named their database
                self._cache = (mtime, None, data)
        return self._cache[1], dict(self._cache[2])

    def foreign(self) -> str | None:
        """Why the file does not describe the database in use (None: it does, or there is no file)."""
        if self._database is None or not self.path.exists():
            return None
        described, _ = self._load()
        current = self._current_database()
        if described is not None and described == current:
            return None
        return (f"{self.path} describes another database ({described or 'unnamed'}), not this one "
                f"({current or 'no tables yet'})")

    def read(self) -> Versions:
        if self.foreign() is not None:
            return {}  # another stack's switch: this database has the template's versions
        return self._load()[1]

    def write(self, changes: Mapping[str, str]) -> Versions:
        problem = self.foreign()
        if problem is not None:
            raise ForeignState(f"not switched: {problem}; use this stack's own state directory (--state-dir)")
        versions = {**self.read(), **changes}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document: dict[str, Any] = {"versions": versions}
        if self._database is not None:
            document["database"] = self._current_database()
        import tempfile  # with shutil, lzma and bz2: only the local stack writes this file, never a function

        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
        os.replace(handle.name, self.path)  # readers see the old file or the new one, never half
        self._cache = None
        return versions

    def __str__(self) -> str:
        return str(self.path)


class SsmVersions:
    """The SSM parameter on AWS. Reads go through Powertools' parameter cache (``max_age`` seconds)."""

    def __init__(self, name: str, *, client: Any = None, max_age: int = 30) -> None:
        self.name = name
        self._client = client
        self._max_age = max_age

    def read(self) -> Versions:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_parameter(self.name, max_age=self._max_age)
        except parameters.exceptions.GetParameterError:
            return {}  # not created yet: the deployed versions are active
        return dict(json.loads(value or "{}"))

    def write(self, changes: Mapping[str, str]) -> Versions:
        from aws_lambda_powertools.utilities import parameters

        current = dict(json.loads(parameters.get_parameter(self.name, force_fetch=True) or "{}"))
        versions = {**current, **changes}
        self._ssm().put_parameter(Name=self.name, Value=json.dumps(versions, sort_keys=True), Type="String",
                                  Overwrite=True)
        return versions

    def _ssm(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("ssm")
        return self._client

    def __str__(self) -> str:
        return f"SSM parameter {self.name}"
