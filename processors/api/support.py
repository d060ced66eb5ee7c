"""The support routes (API key): the answers `dynafold explain` gives, and the redrive the console uses.

Each answer is an ``Explanation`` (words for people, facts for scripts, the events it was read
from) from the root's support services, the very ones the CLI asks. An unknown order or delivery
is a 404; a redrive the delivery's state does not allow (delivered, target disabled) a 409 with
the reason, appending nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, parse_json

if TYPE_CHECKING:  # the services load with the first support request, not at every cold start
    from processors.services.support import Support

SOURCE = "urn:dynafold:admin"
_ID = r"^[A-Za-z0-9._~@+-]+$"  # a sender id, as POST /messages accepts it


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    dry_run: bool = Field(default=False, description="say what would happen; append nothing")
    requested_by: str | None = Field(default=None, max_length=200, description="who asked (kept in the event)")
    reason: str | None = Field(default=None, max_length=500, description="why (kept in the event)")


class RedriveBody(_Body):
    sender_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=_ID,
                                  description="the sender, when several used this message id")


class DeadLettersBody(_Body):
    since: str | None = Field(default=None, max_length=64,
                              description="only deliveries dead-lettered at or after this ISO 8601 time")


def _support(deps: ApiDeps) -> Support:
    if deps.support is None:
        raise ApiError(503, "the support answers are not wired in this deployment")
    return deps.support()


def order_explanation(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Why an order (by id or InFlow order number) was held: its errors, the email, what is pending."""
    return HttpResponse(200, _support(deps).orders.explain(request.path_params["order"]).to_dict())


def sku_explanation(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Why Shopify shows what it shows for a SKU: our count, each item's levels, pushes, echoes, drift."""
    return HttpResponse(200, _support(deps).skus.explain(request.path_params["sku"]).to_dict())


def delivery_explanation(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Whether a webhook was delivered, its next retry, the retries left and when it gives up."""
    sender = request.query.get("sender_id") or None
    return HttpResponse(200, _support(deps).deliveries.explain(request.path_params["message_id"], sender).to_dict())


def redrive_message(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    from processors.services.redrive import RedriveRefused

    body = parse_json(RedriveBody, request.json()) if request.body else RedriveBody()
    try:
        done = _support(deps).redrive.redrive(request.path_params["message_id"], sender_id=body.sender_id,
                                              dry_run=body.dry_run, requested_by=body.requested_by,
                                              reason=body.reason, source=SOURCE)
    except RedriveRefused as refused:
        raise ApiError(409, str(refused)) from None
    return HttpResponse(200, done.to_dict())


def redrive_dead_letters(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    from projections.unit import moment  # the views' query helpers: off the cold start of a webhook

    body = parse_json(DeadLettersBody, request.json()) if request.body else DeadLettersBody()
    since = None if body.since is None else moment(body.since)  # InvalidQuery: a 400 naming the time
    done = _support(deps).redrive.redrive_dead_letters(since, dry_run=body.dry_run, requested_by=body.requested_by,
                                                       reason=body.reason, source=SOURCE)
    return HttpResponse(200, {"dry_run": body.dry_run, "deliveries": [d.to_dict() for d in done],
                              "redriven": sum(1 for d in done if d.appended),
                              "refused": sum(1 for d in done if d.plan.outcome == "refused")})
