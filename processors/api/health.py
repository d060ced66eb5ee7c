"""`GET /status` (API key): is everything caught up and healthy? The service `dynafold status` uses
(processors/services/status.py), built by the composition root on the first request that asks."""

from __future__ import annotations

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse


def status(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Readers' lag (with its series over the window), failures and dead letters, alarms in ALARM,
    view versions, rebuilds; `healthy` false when something needs attention."""
    from projections.unit import parse_duration  # the views' query helpers: off the cold start of a webhook

    if deps.status is None:
        raise ApiError(503, "status is not configured on this deployment")
    window = parse_duration(request.query.get("window") or "1h")
    threshold = request.query.get("lag_threshold")
    # A window outside 5m..24h is an InvalidQuery: 400, as every bad parameter.
    answer = deps.status().status(window, parse_duration(threshold).total_seconds() if threshold else None)
    return HttpResponse(200, answer.to_dict())

