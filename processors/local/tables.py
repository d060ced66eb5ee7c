"""Local table names: the template's tables under a prefix, views following `dynafold rebuild --switch`.

A local stack's active versions live in its own state directory (``views.json``), stamped with the
database they describe (``database_identity``): a switch made on one engine is never followed by
another, such as `make run`'s fresh in-memory engine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from processors.adapters.view_versions import ActiveViewTables, LocalVersions
from processors.operations.tables import database_identity
from processors.operations.template import local_table_name, table_definitions
from processors.wiring.config import Tables

_VERSIONED = re.compile(r"^(?P<family>[a-z0-9-]+?)-(?P<version>v[0-9]+)$")
VERSIONS_FILE = "views.json"  # in a stack's state directory


def template_view_versions() -> dict[str, str]:
    """family -> version for every versioned table in template.yaml (e.g. inventory -> v1)."""
    versions = {}
    for base in table_definitions():
        match = _VERSIONED.match(base)
        if match:
            versions[match["family"]] = match["version"]
    return versions


def view_keys() -> dict[str, tuple[str, ...]]:
    """family -> its key attributes (partition key, then sort key if any), as template.yaml defines
    the family's tables: what an in-memory view store (projections.memory) keys rows by."""
    definitions = table_definitions()
    return {family: tuple(key["AttributeName"] for key in definitions[f"{family}-{version}"].properties["KeySchema"])
            for family, version in template_view_versions().items()}


def local_versions(state_dir: Path, client: Any, prefix: str) -> LocalVersions:
    """The stack's versions file, followed only by the database it describes."""
    events = local_table_name(prefix, "events")
    return LocalVersions(state_dir / VERSIONS_FILE, lambda: database_identity(client, events))


def local_tables(prefix: str, versions: Mapping[str, str] | None = None,
                 settings: LocalVersions | None = None) -> Tables:
    """Local names from a prefix: the views at ``versions``, or following ``settings`` as
    `dynafold rebuild --switch` changes it (a running stack picks a switch up); with neither, the
    template's versions."""
    deployed = template_view_versions()
    names = {family: local_table_name(prefix, f"{family}-{version}") for family, version in deployed.items()}
    views: Mapping[str, str]
    if settings is not None:
        views = ActiveViewTables(names, settings.read, source=settings)
    else:
        chosen = versions or {}
        views = {family: local_table_name(prefix, f"{family}-{chosen.get(family, version)}")
                 for family, version in deployed.items()}
    return Tables(local_table_name(prefix, "events"), local_table_name(prefix, "idempotency"),
                  local_table_name(prefix, "checkpoints"), views)
