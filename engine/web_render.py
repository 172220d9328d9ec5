"""What every workbench page handler shares: the templates (autoescaped: every value from a
run is text, never markup), rendering with the session's CSRF token, a page for an error,
and reading a posted form after its CSRF check."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from engine.evals.plan import EVALUATION
from engine.rest_errors import classify

log = logging.getLogger("engine.web")

pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "web_pages"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
pages.filters["run_url"] = lambda run_id: "/runs/" + quote(run_id, safe="")
pages.filters["money"] = lambda usd: f"${usd:.4f}"
pages.globals["EVALUATION"] = EVALUATION  # the workflow name of an evaluation run


def session_of(request: Request) -> str:
    """What a CSRF token is bound to: the signed-in token, or `local` (no tokens, or a
    request with its own Authorization header)."""
    state = request.state
    return "local" if getattr(state, "header_auth", False) else state.session or "local"


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    state = request.state
    values.setdefault("message", None)
    html = pages.get_template(name).render(
        csrf=request.app.state.csrf.token(session_of(request)),
        can_write=not getattr(state, "read_only", False),
        signed_in=bool(getattr(state, "session", "")),
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


def refused(request: Request, status_code: int, message: str) -> HTMLResponse:
    title = "Refused" if status_code == 403 else "Problem"
    return render(request, "problem.html", status_code, title=title, message=message)


def problem(request: Request, exc: Exception) -> HTMLResponse:
    status, _, message = classify(exc, request.app.state.settings.address)
    if status == 500:
        log.exception("internal error serving %s %s", request.method, request.url.path)
    return refused(request, status, message)


async def form_of(request: Request, write: bool = True) -> dict[str, str] | Response:
    """The posted form, after the CSRF check (a request with its own Authorization header
    needs none: no other site can send one), and, when it `write`s, the token's right to."""
    body = (await request.body()).decode("utf-8", "replace")
    form = {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}
    csrf = request.app.state.csrf
    if not request.state.header_auth and not csrf.valid(session_of(request), form.get("csrf", "")):
        return refused(request, 403, "the form is out of date or was not sent by this site: "
                       "reload the page and send it again")  # fmt: skip
    if write and getattr(request.state, "read_only", False):
        return refused(request, 403, "this token may only read")
    return form
