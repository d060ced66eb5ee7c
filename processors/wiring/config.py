"""Where the tables are: from the Lambda environment on AWS, from a prefix and a settings file locally.

View tables carry a version in their name (``inventory-v1``) so a rebuild can fill a fresh copy
beside the live one; which version is active is configuration, never a constant in code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from processors.adapters.view_versions import PARAMETER_ENV, ActiveViewTables, LocalVersions, SsmVersions

_VERSIONED = re.compile(r"^(?P<family>[a-z0-9-]+?)-(?P<version>v[0-9]+)$")
LOCAL_SETTINGS = Path(".dynafold") / "views.json"


def template_view_versions() -> dict[str, str]:
    """family -> version for every versioned table in template.yaml (e.g. inventory -> v1)."""
    from processors.operations.template import table_definitions  # local only: Lambda never parses YAML

    versions = {}
    for base in table_definitions():
        match = _VERSIONED.match(base)
        if match:
            versions[match["family"]] = match["version"]
    return versions


@dataclass(frozen=True)
class Tables:
    events: str
    idempotency: str
    views: Mapping[str, str] = field(default_factory=dict)  # family -> physical table name

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Tables":
        """On Lambda: EVENTS_TABLE, IDEMPOTENCY_TABLE and VIEW_TABLES (JSON family -> deployed name);
        with VIEW_VERSIONS_PARAMETER, the active versions in that SSM parameter override the deployed ones."""
        views: Mapping[str, str] = json.loads(env.get("VIEW_TABLES", "{}"))
        parameter = env.get(PARAMETER_ENV)
        if parameter:
            views = ActiveViewTables(views, SsmVersions(parameter).read)
        return cls(env["EVENTS_TABLE"], env["IDEMPOTENCY_TABLE"], views)

    @classmethod
    def local(cls, prefix: str, versions: Mapping[str, str] | None = None,
              settings: Path = LOCAL_SETTINGS) -> "Tables":
        """Local names from a prefix. Without ``versions``, the views follow the local settings file
        as `dynafold rebuild --switch` changes it (a running stack picks a switch up)."""
        from processors.operations.template import local_table_name

        deployed = template_view_versions()
        names = {family: local_table_name(prefix, f"{family}-{version}") for family, version in deployed.items()}
        views: Mapping[str, str]
        if versions is None:
            views = ActiveViewTables(names, LocalVersions(settings).read)
        else:
            views = {family: local_table_name(prefix, f"{family}-{versions.get(family, version)}")
                     for family, version in deployed.items()}
        return cls(local_table_name(prefix, "events"), local_table_name(prefix, "idempotency"), views)

    def to_env(self) -> dict[str, str]:
        return {"EVENTS_TABLE": self.events, "IDEMPOTENCY_TABLE": self.idempotency,
                "VIEW_TABLES": json.dumps(dict(self.views))}


def active_versions(path: Path = LOCAL_SETTINGS) -> dict[str, str]:
    """Locally, `dynafold rebuild --switch` records the active view versions here."""
    return LocalVersions(path).read()

