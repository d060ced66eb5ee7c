"""The support questions' read routes (API key): ``GET /explain/<question>/{subject}``, answered by
the composition root's read service (processors/services/explanations.py) as `dynafold explain`
answers them: an ``Explanation`` as JSON (404 when what is asked about does not exist)."""

from __future__ import annotations

from collections.abc import Callable

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse
from processors.services.explanations import Explanations
from projections.explanation import Explanation

Route = Callable[[HttpRequest, ApiDeps], HttpResponse]


def question(ask: Callable[[Explanations, str], Explanation], parameter: str) -> Route:
    """The route answering ``ask`` about the path parameter ``parameter``."""
    def answer(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
        if deps.explanations is None:
            raise ApiError(503, "explanations are not wired in this deployment")
        return HttpResponse(200, ask(deps.explanations, request.path_params[parameter]).to_dict())

    answer.__doc__ = ask.__doc__
    return answer


explain_sku = question(Explanations.sku, "sku")
