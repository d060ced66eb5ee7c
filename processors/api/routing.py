"""The route table's vocabulary: a route (method, path template, handler, auth, what its body and
parameters are) and the auth a route declares. ``processors.api.app`` lists the routes and
dispatches over them; ``processors.api.openapi`` describes them; neither needs the other's module
for these types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from processors.adapters.secrets import Secrets
from processors.api.deps import ApiDeps
from processors.api.http import HttpRequest, HttpResponse

# Path parameters become partition keys with a prefix ("sku:" + sku) or inside composite keys
# (admin idempotency keys), so they get DynamoDB's sort-key budget, not the whole 2048 bytes.
MAX_PATH_PARAM_BYTES = 1024

RouteHandler = Callable[[HttpRequest, ApiDeps], HttpResponse]


Auth = Callable[[HttpRequest, Secrets], None]  # raises ApiError (401/403, or 503 without its secret)


def public(request: HttpRequest, secrets: Secrets) -> None:
    """No credentials: only for what is no secret (the API's own description)."""


@dataclass(frozen=True)
class Param:
    """A query parameter or request header a route reads (for the OpenAPI document)."""
    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: RouteHandler
    auth: Auth  # checked before the handler sees the body: a rejected caller is never parsed
    summary: str = ""
    body: tuple[type[BaseModel], ...] = ()  # JSON models the body may be (several: one per topic)
    body_required: bool = True
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    ok: Mapping[int, str] = field(default_factory=lambda: {200: "OK"})
    errors: Mapping[int, str] = field(default_factory=dict)  # beyond what auth, body and path imply

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")

    @property
    def path_names(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.template))
