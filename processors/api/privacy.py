"""Personal data over HTTP: Shopify's mandatory privacy webhooks and the operator's erasure route.

- ``customers/redact`` forgets ``shopify-customer:<id>``; ``shop/redact`` forgets every Shopify
  customer subject (dynafold serves one shop: a shop other than the configured one holds nothing
  here); both are recorded even when nothing was held (dynafold keeps no Shopify customer fields),
  keyed by the webhook's event id, so a redelivery changes nothing. The customer's email and phone,
  which Shopify sends, are never read.
- ``customers/data_request`` is recorded in the subject's stream; the reactor raises a
  ``data_request`` alert telling the operator to run ``dynafold personal-data SUBJECT``, whose
  export goes to the merchant (Shopify expects the app to give the data to the store owner).
- ``POST /subjects/{subject}/forget`` is ``dynafold forget`` for an operator with the admin key.

Shopify answers every privacy webhook with 200 once handled; a 401 for a bad HMAC (the route's auth).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from events import shopify
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse
from processors.api.telemetry import logger

if TYPE_CHECKING:  # built by the composition root, loaded only when a privacy route runs
    from processors.services.personal_data import Forgotten, PersonalData


class ForgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    reason: str = Field(min_length=1, max_length=500, description="the request this answers; never personal data")
    dry_run: bool = False


def _service(deps: ApiDeps) -> PersonalData:
    if deps.personal_data is None:
        raise ApiError(503, "personal data service is not configured")
    return deps.personal_data()


def forget_subject(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Destroy a data subject's key; its values read [erased] everywhere (see `dynafold forget`)."""
    body = request.parse(ForgetBody)
    subject = request.path_params["subject"]
    forgotten = _service(deps).forget(subject, body.reason, "admin api", dry_run=body.dry_run,
                                      correlation_id=request.request_id or None)
    return HttpResponse(200, forgotten.to_json())


def export_subject(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Every value held for a data subject, revealed (a data request's export)."""
    return HttpResponse(200, _service(deps).export(request.path_params["subject"]).to_json())


def shopify_privacy(topic: str, payload: Any, event_key: str, request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    service = _service(deps)
    correlation = request.request_id or None
    logger.info("shopify privacy webhook", extra={"topic": topic, "event_key": event_key})  # never the payload
    if isinstance(payload, shopify.ShopRedact):
        configured = deps.settings.shopify_shop
        if configured and payload.shop_domain.strip().lower() != configured:
            return HttpResponse(200, {"topic": topic, "forgotten": [], "note": "not this deployment's shop: "
                                                                               "nothing of it is held here"})
        done = service.forget_kind(shopify.CUSTOMER_KIND, f"Shopify shop/redact for shop {payload.shop_id}",
                                   "shopify shop/redact", request_ref=event_key, correlation_id=correlation)
        return HttpResponse(200, {"topic": topic, "forgotten": [_summary(f) for f in done]})
    customer = payload.customer.id
    if customer is None:  # Shopify may name a customer by email only: nothing here is keyed by email
        return HttpResponse(200, {"topic": topic, "note": "no customer id: dynafold keeps no customer emails"})
    subject = shopify.customer_subject(customer)
    if isinstance(payload, shopify.CustomerRedact):
        forgotten = service.forget(subject, f"Shopify customers/redact for shop {payload.shop_id}",
                                   "shopify customers/redact", request_ref=event_key, correlation_id=correlation,
                                   nothing_held_is_fine=True)
        return HttpResponse(200, {"topic": topic, "forgotten": [_summary(forgotten)]})
    recorded = service.record_request(subject, "shopify customers/data_request", str(payload.data_request.id),
                                      payload.orders_requested, correlation_id=correlation)
    return HttpResponse(200, {"topic": topic, "subject": subject, "event_id": recorded.event_ids[0],
                              "deduplicated": recorded.deduplicated,
                              "export": f"dynafold personal-data {subject}"})


def _summary(forgotten: Forgotten) -> dict[str, Any]:
    return {"subject": forgotten.subject, "key_destroyed": forgotten.key_id is not None,
            "streams": len(forgotten.streams)}
