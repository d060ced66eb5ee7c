"""Secrets by role: a value from the environment locally, an SSM Parameter Store name on AWS.

For each role, ``DYNAFOLD_<ROLE>`` holds the value itself (local runs and tests) and
``DYNAFOLD_<ROLE>_PARAM`` the name of a SecureString parameter to read instead (the template
passes names, never values). Parameters are fetched with Powertools' parameters utility, which
caches them for a few minutes, so a rotated secret takes effect without a deploy.

A missing secret is ``None``: routes that need it answer 503 and never accept unsigned input.
Values never reach logs; ``Secrets`` has no repr that shows them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

ROLES = {
    "shopify": "DYNAFOLD_SHOPIFY_SECRET",
    "shopify_previous": "DYNAFOLD_SHOPIFY_PREVIOUS_SECRET",  # accepted during a rotation
    "inflow": "DYNAFOLD_INFLOW_SECRET",
    "signing": "DYNAFOLD_SIGNING_SECRET",  # outbound webhooks, whsec_...
    "admin_api_key": "DYNAFOLD_ADMIN_API_KEY",
    "inflow_api_key": "DYNAFOLD_INFLOW_API_KEY",  # the error monitor re-reads orders from InFlow
    "shopify_admin_token": "DYNAFOLD_SHOPIFY_ADMIN_TOKEN",  # the app's Admin API access token (pushes)
}
_PARAMETER_MAX_AGE_SECONDS = 300


def _ssm_parameter(name: str) -> str | None:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(name, decrypt=True, max_age=_PARAMETER_MAX_AGE_SECONDS)
    return value or None


@dataclass(frozen=True)
class Secrets:
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    fetch_parameter: Callable[[str], str | None] = field(default=_ssm_parameter, repr=False)

    def get(self, role: str) -> str | None:
        variable = ROLES[role]
        parameter = self.env.get(f"{variable}_PARAM")
        if parameter:
            return self.fetch_parameter(parameter)
        return self.env.get(variable) or None

    @classmethod
    def of(cls, **values: str | None) -> "Secrets":
        """Fixed values by role (the local stack and tests)."""
        unknown = set(values) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown secret role(s): {', '.join(sorted(unknown))}")
        return cls({ROLES[role]: value for role, value in values.items() if value})
