"""Signing in with the admin API key, and out."""

from __future__ import annotations

from processors.console import session as sessions
from processors.console.context import HOME, Context, secure_transport
from processors.console.web import Page, PageError

def _safe_next(target: str | None) -> str:
    """Only a console path: never another site (an open redirect), never a scheme-relative //host."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return HOME
    return target


def home(ctx: Context) -> Page:
    return Page.redirect(HOME)


def form_page(ctx: Context) -> Page:
    if ctx.session is not None:
        return Page.redirect(_safe_next(ctx.query.get("next")))
    return ctx.page("login.html", title="Sign in", next=_safe_next(ctx.query.get("next")), error="")


def sign_in(ctx: Context) -> Page:
    """The key typed in is compared in constant time; a wrong one is a 401 and sets nothing."""
    given = ctx.form.get("api_key", "")
    if not given or not sessions.key_matches(ctx.api_key, given):
        raise PageError(401, "that is not the admin API key")
    cookie = sessions.new_cookie(ctx.api_key, ctx.now, ctx.deps.session_hours)
    header = sessions.set_cookie(cookie, secure=secure_transport(ctx.request), max_age=ctx.deps.session_hours * 3600)
    return Page.redirect(_safe_next(ctx.form.get("next")), {"set-cookie": header})


def sign_out(ctx: Context) -> Page:
    header = sessions.set_cookie("", secure=secure_transport(ctx.request), max_age=0)
    return Page.redirect("/console/login", {"set-cookie": header})
