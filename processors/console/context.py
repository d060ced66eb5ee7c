"""One request as a page sees it, and what every page shares (the navigation, the home page)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from processors.console import session as sessions
from processors.console.render import render
from processors.console.web import Page

if TYPE_CHECKING:  # the deps and the request type load with the first page, not at cold start
    from processors.api.http import HttpRequest
    from processors.console.deps import ConsoleDeps

HOME = "/console/health"
NAV = (("health", "Health", "/console/health"), ("streams", "Streams", "/console/streams"),
       ("views", "Views", "/console/views"))


@dataclass
class Context:
    """One request as a page sees it: parameters, the session's CSRF token, and how to render."""

    deps: ConsoleDeps
    request: HttpRequest
    params: Mapping[str, str]
    now: datetime
    session: sessions.Session | None = None
    api_key: str = ""
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query

    @property
    def csrf(self) -> str:
        return sessions.csrf_token(self.api_key, self.session) if self.session else ""

    def page(self, template: str, *, section: str = "", status: int = 200, **values: Any) -> Page:
        return Page.html(status, render(template, csrf=self.csrf, nav=NAV, section=section,
                                        signed_in=self.session is not None, **values))



def secure_transport(request: HttpRequest) -> bool:
    """Cookies are Secure except over plain http on loopback (the local stack): on AWS the source
    address is the caller's, set by API Gateway, never 127.0.0.1."""
    return not request.source_ip.startswith("127.") and request.source_ip != "::1"


