"""A client for dynafold's HTTP API that signs what each route requires (the demo and tests use it).

Shopify webhooks carry ``X-Shopify-Hmac-Sha256`` (base64 HMAC of the body), InFlow webhooks
``X-Inflow-Signature: sha256=<hex>``, admin and read routes ``X-Api-Key``. Answers come back as
(status, JSON body); a 4xx/5xx is an answer, not an exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

from processors.adapters.secrets import Secrets

Answer = tuple[int, Any]


class ApiClient:
    def __init__(self, base_url: str, secrets: Secrets, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._secrets = secrets
        self._timeout = timeout

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> Answer:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base_url + path, data=data, method=method,  # noqa: S310 - our own API
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - our own API
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def admin(self, method: str, path: str, body: Any = None, **headers: str) -> Answer:
        return self.call(method, path, body, {"x-api-key": self._secrets.get("admin_api_key") or "", **headers})

    def shopify(self, topic: str, payload: Any, webhook_id: str, *, secret: str | None = None,
                raw: bytes | None = None, signed: bytes | None = None, event_id: str | None = None,
                **headers: str) -> Answer:
        """A webhook as Shopify sends it; ``event_id`` becomes X-Shopify-Event-Id (the same for
        every delivery of one event), other keyword headers are added as given."""
        body = raw if raw is not None else json.dumps(payload).encode()
        key = secret or self._secrets.get("shopify") or ""
        digest = base64.b64encode(hmac.new(key.encode(), signed or body, hashlib.sha256).digest()).decode()
        return self.call("POST", "/webhooks/shopify", raw=body, headers={
            "x-shopify-topic": topic, "x-shopify-hmac-sha256": digest, "x-shopify-webhook-id": webhook_id,
            **({"x-shopify-event-id": event_id} if event_id else {}), **headers})

    def inflow(self, order: Any, delivery_id: str | None = None, *, secret: str | None = None) -> Answer:
        body = json.dumps(order).encode()
        key = secret or self._secrets.get("inflow") or ""
        headers = {"x-inflow-signature": "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}
        if delivery_id:
            headers["x-inflow-delivery-id"] = delivery_id
        return self.call("POST", "/webhooks/inflow/orders", raw=body, headers=headers)
