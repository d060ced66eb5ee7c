"""Where the tables are: from the Lambda environment on AWS (locally: ``processors.local.tables``).

View tables carry a version in their name (``inventory-v1``) so a rebuild can fill a fresh copy
beside the live one; which version is active is configuration, never a constant in code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from processors.adapters.view_versions import PARAMETER_ENV, ActiveViewTables, SsmVersions



@dataclass(frozen=True)
class Tables:
    events: str
    idempotency: str
    checkpoints: str
    views: Mapping[str, str] = field(default_factory=dict)  # family -> physical table name

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Tables":
        """On Lambda: EVENTS_TABLE, IDEMPOTENCY_TABLE, CHECKPOINTS_TABLE and VIEW_TABLES (JSON family -> deployed name);
        with VIEW_VERSIONS_PARAMETER, the active versions in that SSM parameter override the deployed ones."""
        views: Mapping[str, str] = json.loads(env.get("VIEW_TABLES", "{}"))
        parameter = env.get(PARAMETER_ENV)
        if parameter:
            source = SsmVersions(parameter)
            views = ActiveViewTables(views, source.read, source=source)
        return cls(env["EVENTS_TABLE"], env["IDEMPOTENCY_TABLE"], env["CHECKPOINTS_TABLE"], views)

    def to_env(self) -> dict[str, str]:
        return {"EVENTS_TABLE": self.events, "IDEMPOTENCY_TABLE": self.idempotency,
                "CHECKPOINTS_TABLE": self.checkpoints,
                "VIEW_TABLES": json.dumps(dict(self.views))}
