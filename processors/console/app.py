"""The console function: one router over every page, API Gateway HTTP API (payload v2) in and out.

The same ``make_handler(deps)`` serves Lambda (ConsoleFunction, behind the HTTP API's ``/console``
routes) and the local stack's loopback server. Every page but sign-in and the static files needs
a session; every POST needs the session's CSRF token. Unknown ids get a 404 page, bad parameters
a 400 page, and nothing internal ever reaches the page (500s are logged with their trace).
"""

from __future__ import annotations

import importlib
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from typing import TYPE_CHECKING

from processors.console import session as sessions
from processors.console.context import HOME, NAV, Context
from processors.console.render import render
from processors.console.telemetry import logger
from processors.console.web import STATIC_PREFIX, Page, PageError, form, static_file

if TYPE_CHECKING:  # built by the composition root; its modules (boto3, the views) load on the first page
    from processors.api.http import HttpRequest
    from processors.console.deps import ConsoleDeps

PageHandler = Callable[[Context], Page]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    page: str  # "<module under processors.console.pages>.<function>": imported when first asked for
    signed_in: bool = True  # False: sign-in itself

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")

    def handler(self, ctx: Context) -> Page:
        """The page's function, its module imported on the first request it serves (a cold
        container's sign-in page loads none of the pages that read the log or the views)."""
        module, _, function = self.page.rpartition(".")
        found: PageHandler = getattr(importlib.import_module(f"processors.console.pages.{module}"), function)
        return found(ctx)


ROUTES = (
    Route("GET", "/console", "signin.home"),
    Route("GET", "/console/", "signin.home"),
    Route("GET", "/console/login", "signin.form_page", signed_in=False),
    Route("POST", "/console/login", "signin.sign_in", signed_in=False),
    Route("POST", "/console/logout", "signin.sign_out"),
    Route("GET", "/console/health", "health.page"),
    Route("GET", "/console/find", "find.find"),
    Route("GET", "/console/alerts", "alerts.page"),
    Route("POST", "/console/alerts/read", "actions.mark_alerts_read"),
    Route("POST", "/console/alerts/{alert_id}/read", "actions.mark_alert_read"),
    Route("GET", "/console/orders/{ref}", "support.order"),
    Route("GET", "/console/deliveries/{ref}", "support.delivery"),
    Route("POST", "/console/deliveries/{ref}/redrive", "actions.redrive"),
    Route("POST", "/console/targets/enable", "actions.enable_target"),
    Route("GET", "/console/skus/{sku}", "support.sku"),
    Route("POST", "/console/skus/{sku}/adopt", "actions.adopt"),
    Route("GET", "/console/trace/{ref}", "find.trace"),
    Route("GET", "/console/events/{event_id}", "find.event"),
    Route("GET", "/console/streams", "streams.categories"),
    Route("GET", "/console/streams/{category}", "streams.category"),
    Route("GET", "/console/streams/{category}/{key}", "streams.stream"),
    Route("GET", "/console/streams/{category}/{key}/{version}", "event.page"),
    Route("GET", "/console/search", "streams.search"),
    Route("GET", "/console/views", "views.registry"),
    Route("GET", "/console/views/{name}", "views.rows"),
    Route("GET", "/console/views/{name}/rows/{key}", "views.row"),
)


_COMPILED: list[tuple[Route, re.Pattern[str]]] = []


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    if not _COMPILED:
        _COMPILED.extend((route, route.pattern) for route in ROUTES)
    allowed = []
    for route, pattern in _COMPILED:
        found = pattern.match(path)
        if found is None:
            continue
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            params = {name: urllib.parse.unquote(value) for name, value in found.groupdict().items()}
            if any(not value or "\x00" in value or len(value) > 1024 for value in params.values()):
                raise PageError(400, "empty or invalid path parameter")
            return route, params
        allowed.append(route.method)
    if allowed:
        raise PageError(405, f"{method} is not allowed here (only {', '.join(sorted(set(allowed)))})")
    raise PageError(404, f"no page at {path[:200]}")


def _cookie_header(event: Mapping[str, Any], request: HttpRequest) -> str:
    """Payload v2 carries the request's cookies in ``cookies``; a plain Cookie header otherwise."""
    cookies = event.get("cookies")
    return "; ".join(cookies) if isinstance(cookies, list) else request.header("cookie") or ""


def dispatch(event: Mapping[str, Any], deps: ConsoleDeps) -> tuple[str, Page]:
    """(route template, page) for one API Gateway event; never raises."""
    from events.errors import DynafoldError, NotFound, VersionConflict
    from processors.api.http import ApiError, HttpRequest

    template = "-"
    ctx: Context | None = None
    try:
        request = HttpRequest.from_api_gateway(event)
        if request.path.startswith(STATIC_PREFIX) and request.method in ("GET", "HEAD"):
            return "GET /console/static/*", static_file(request.path)
        route, params = match(request.method, request.path)
        template = f"{route.method} {route.template}"
        ctx = Context(deps, request, params, deps.clock())
        api_key = deps.secrets.get("admin_api_key")
        if not api_key:
            raise PageError(503, "the admin API key is not configured on this deployment; nobody can sign in")
        ctx.api_key = api_key
        ctx.session = sessions.read_cookie(api_key, sessions.cookie_value(_cookie_header(event, request)), ctx.now)
        if request.method == "POST":
            ctx.form = form(request.body, request.header("content-type"))
        if route.signed_in:
            if ctx.session is None:
                if request.method != "GET":
                    raise PageError(401, "sign in first: this action needs a session")
                target = request.path + ("?" + urllib.parse.urlencode(dict(request.query)) if request.query else "")
                return template, Page.redirect("/console/login?" + urllib.parse.urlencode({"next": target}))
            if request.method == "POST" and not sessions.csrf_matches(api_key, ctx.session, ctx.form.get("csrf")):
                raise PageError(403, "missing or wrong CSRF token: reload the page and try again")
        return template, route.handler(ctx)
    except PageError as error:
        return template, _error_page(ctx, error.status, error.reason)
    except ApiError as error:  # the request itself is malformed (e.g. a body that is not base64)
        return template, _error_page(ctx, error.status if error.status < 500 else 400, error.reason)
    except DynafoldError as error:
        if isinstance(error, NotFound):
            return template, _error_page(ctx, 404, str(error))
        if isinstance(error, VersionConflict):
            return template, _error_page(ctx, 409, f"{error}; reload and try again")
        return template, _error_page(ctx, 400, str(error))
    except Exception:  # noqa: BLE001 - logged with its trace; the page says nothing internal
        logger.exception("page failed", extra={"route": template})
        return template, _error_page(ctx, 500, "internal error; the request id is in the console's log")


_TITLES = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           409: "Conflict", 413: "Too large", 415: "Unsupported form", 500: "Internal error", 503: "Unavailable"}


def _error_page(ctx: Context | None, status: int, reason: str) -> Page:
    signed_in = ctx is not None and ctx.session is not None
    csrf = ctx.csrf if ctx is not None else ""
    template = "login.html" if status == 401 else "error.html"
    return Page.html(status, render(template, status=status, title=_TITLES.get(status, "Error"), reason=reason,
                                    nav=NAV, section="", signed_in=signed_in, csrf=csrf, next=HOME, error=reason))


def make_handler(deps: ConsoleDeps) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId")
        if request_id:
            logger.set_correlation_id(request_id)
        route, page = dispatch(event, deps)
        log = logger.warning if page.status >= 400 else logger.info
        log("page", extra={"route": route, "status": page.status})
        return page.to_api_gateway()

    return handler
