"""`GET /trace/{id}`: what an event caused and what caused it, or what one request caused.

The same read service `dynafold audit trace` asks (``processors/services/event_trace.py``), from
the composition root: an unknown id is a 404, a bad one a 400, the answer an ``Explanation``.
"""

from __future__ import annotations

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse


def trace(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """The trace of an event id (its causes, itself, its effects) or of a correlation id."""
    if deps.event_trace is None:
        raise ApiError(503, "the trace is not configured on this API")
    return HttpResponse(200, deps.event_trace()(request.path_params["id"]).to_dict())
