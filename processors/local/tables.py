"""Local table names: the template's tables under a prefix, views following `dynafold rebuild --switch`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from processors.adapters.view_versions import ActiveViewTables, LocalVersions
from processors.operations.template import local_table_name, table_definitions
from processors.wiring.config import Tables

_VERSIONED = re.compile(r"^(?P<family>[a-z0-9-]+?)-(?P<version>v[0-9]+)$")
LOCAL_SETTINGS = Path(".dynafold") / "views.json"


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


def local_tables(prefix: str, versions: Mapping[str, str] | None = None,
                 settings: Path = LOCAL_SETTINGS) -> Tables:
    """Local names from a prefix. Without ``versions``, the views follow the local settings file
    as `dynafold rebuild --switch` changes it (a running stack picks a switch up)."""
    deployed = template_view_versions()
    names = {family: local_table_name(prefix, f"{family}-{version}") for family, version in deployed.items()}
    views: Mapping[str, str]
    if versions is None:
        source = LocalVersions(settings)
        views = ActiveViewTables(names, source.read, source=source)
    else:
        views = {family: local_table_name(prefix, f"{family}-{versions.get(family, version)}")
                 for family, version in deployed.items()}
    return Tables(local_table_name(prefix, "events"), local_table_name(prefix, "idempotency"),
                  local_table_name(prefix, "checkpoints"), views)


def active_versions(path: Path = LOCAL_SETTINGS) -> dict[str, str]:
    """Locally, `dynafold rebuild --switch` records the active view versions here."""
    return LocalVersions(path).read()

