"""The support questions' read routes (API key): ``GET /explain/<question>/{subject}``, answered by
the composition root's read service (processors/services/explanations.py) as `dynafold explain`
answers them: an ``Explanation`` as JSON (404 when what is asked about does not exist).

A question is one small function; the service is built only when a question is asked, so the
ingest function's cold start does not pay for the explanations' modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse

if TYPE_CHECKING:
    from processors.services.explanations import Explanations


def _service(deps: ApiDeps) -> Explanations:
    if deps.explanations is None:
        raise ApiError(503, "explanations are not wired in this deployment")
    return deps.explanations()


def explain_sku(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Why does Shopify show what it shows for this SKU?"""
    return HttpResponse(200, _service(deps).sku(request.path_params["sku"]).to_dict())
