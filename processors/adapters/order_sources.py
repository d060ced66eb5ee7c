"""Where the error monitor gets an order's latest data to re-validate it.

On AWS, the InFlow API (the system of record). Locally, and whenever InFlow is not configured,
the order as last received: the ``order`` of the newest ``order validated`` in its stream, which
is exactly what the webhook carried (minus what no rule reads).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Protocol

from events.envelope import RecordedEvent
from events.personal import revealed
from events.order_rules import Order
from events.orders import OrderValidated
from processors.adapters.secrets import Secrets


class OrderSource(Protocol):
    def latest(self, order_id: str, history: Sequence[RecordedEvent]) -> Order | None:
        """The order's current data, or None when the source no longer has it."""


class LogOrderSource:
    def latest(self, order_id: str, history: Sequence[RecordedEvent]) -> Order | None:
        for event in reversed(history):
            if isinstance(event.data, OrderValidated) and event.data.order:
                order = revealed(event.data.order)
                if not isinstance(order, dict):  # its customer was forgotten: nothing to re-validate from
                    return None
                return Order.model_validate({"order_id": order_id, **order})
        return None


class InflowApiOrderSource:
    """GET {base}/{company}/sales-orders/{id}?include=lines.product with the API key as a bearer token."""

    def __init__(self, base_url: str, company_id: str, secrets: Secrets, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._company = company_id
        self._secrets = secrets
        self._timeout = timeout

    def latest(self, order_id: str, history: Sequence[RecordedEvent]) -> Order | None:
        # urllib.request brings http.client, ssl and email (~20 ms): loaded by the first order the
        # error monitor re-validates, not by every run's cold start (most runs find nothing due).
        import urllib.error
        import urllib.parse
        import urllib.request

        key = self._secrets.get("inflow_api_key")
        if not key:
            raise RuntimeError("the InFlow API key is not configured (DYNAFOLD_INFLOW_API_KEY[_PARAM])")
        url = (f"{self._base}/{urllib.parse.quote(self._company, safe='')}/sales-orders/"
               f"{urllib.parse.quote(order_id, safe='')}?include=lines.product")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}",  # noqa: S310 - fixed https base
                                                       "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - fixed https base
                return Order.model_validate(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise


def order_source_from_env(env: Mapping[str, str] = os.environ, secrets: Secrets | None = None) -> OrderSource:
    base = env.get("DYNAFOLD_INFLOW_API_URL")
    company = env.get("DYNAFOLD_INFLOW_COMPANY_ID")
    if base and company:
        return InflowApiOrderSource(base, company, secrets or Secrets(env))
    return LogOrderSource()
