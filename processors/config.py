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

from processors.template import local_table_name, table_definitions

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


@dataclass(frozen=True)
class Tables:
    events: str
    idempotency: str
    views: Mapping[str, str] = field(default_factory=dict)  # family -> physical table name

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Tables":
        """On Lambda: EVENTS_TABLE, IDEMPOTENCY_TABLE and VIEW_TABLES (JSON family -> name)."""
        return cls(env["EVENTS_TABLE"], env["IDEMPOTENCY_TABLE"], json.loads(env.get("VIEW_TABLES", "{}")))

    @classmethod
    def local(cls, prefix: str, versions: Mapping[str, str] | None = None) -> "Tables":
        active = {**template_view_versions(), **(versions or active_versions())}
        return cls(
            local_table_name(prefix, "events"),
            local_table_name(prefix, "idempotency"),
            {family: local_table_name(prefix, f"{family}-{version}") for family, version in active.items()},
        )

    def to_env(self) -> dict[str, str]:
        return {"EVENTS_TABLE": self.events, "IDEMPOTENCY_TABLE": self.idempotency,
                "VIEW_TABLES": json.dumps(dict(self.views))}


def active_versions(path: Path = LOCAL_SETTINGS) -> dict[str, str]:
    """Locally, `dynafold rebuild --switch` records the active view versions here."""
    if path.exists():
        return dict(json.loads(path.read_text()))
    return {}
