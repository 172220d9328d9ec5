"""The workbench: server-rendered pages over the client API, served by `starter.py serve`
beside the JSON API (same tokens, same rate limit): the runs, a run as its steps (live over
the run's event stream), acting on a run, and the approval form of a waiting step.

No state of its own and no second way to act: every button calls what the REST API calls,
and the run checks what it is sent. Templates (engine/web_pages/) escape every value;
sign-in, CSRF and the security headers are engine/web_security.py's."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from engine import web_definitions, web_evals
from engine.client import EngineClient
from engine.client_models import ExecutionStatus
from engine.rest_auth import ApiConfig, RateLimiter, Tokens
from engine.rest_deps import engine
from engine.rest_events import open_stream
from engine.run_states import LISTED_STATES
from engine.web_forms import field_errors, form_fields, payload_of
from engine.web_history import RunAccount, run_account
from engine.web_render import form_of, problem, refused, render
from engine.web_security import COOKIE, Csrf, PageSession, local_path
from engine.web_view import run_view
from workflows.definition import WaitForSignalStep
from workflows.errors import SignalRefused, WorkflowError
from workflows.rerun import rerun_plan

HERE = Path(__file__).parent
PAGE_SIZE = 50
SIGN_IN_TRIES_PER_MINUTE = 20
"""Sign-ins per client address a minute, right or wrong."""
MAX_SIGN_IN_BYTES = 16_384
MAX_CACHED_ACCOUNTS = 1000
"""Runs whose latest history a live refresh keeps, for the other pages watching them."""


def add_pages(app: FastAPI, config: ApiConfig) -> None:
    """The pages, their assets and the session in front of the gate (call after the gate is
    added, so the session middleware runs first)."""
    app.state.csrf = Csrf()
    app.state.accounts = {}
    app.state.sign_in = (Tokens(config.tokens), RateLimiter(SIGN_IN_TRIES_PER_MINUTE))
    app.include_router(web_evals.router, include_in_schema=False)  # before /runs/{id}
    app.include_router(router, include_in_schema=False)
    app.include_router(web_definitions.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "web_static"), name="static")
    app.add_middleware(PageSession, config=config)


router = APIRouter()


# sign-in


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/runs", 303)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = "/runs") -> Response:
    return render(request, "sign_in.html", title="Sign in", next=local_path(next))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    body = b""
    async for chunk in request.stream():  # the gate lets this path through: cap it here
        body += chunk
        if len(body) > MAX_SIGN_IN_BYTES:
            return refused(request, 413, f"the sign-in form is over {MAX_SIGN_IN_BYTES} bytes")
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    target = local_path(form.get("next"))
    tokens, limiter = request.app.state.sign_in
    given = form.get("token", "").strip()
    wait = limiter.take(f"sign-in from {request.client.host if request.client else '-'}")
    if tokens and wait:  # no token is even looked at: guessing goes no faster than this
        message = f"too many tries: wait {math.ceil(wait)} s"
        return render(request, "sign_in.html", 429, title="Sign in", next=target, message=message)
    if tokens and tokens.find(given) is None:
        message = "this token is not valid"
        return render(request, "sign_in.html", 401, title="Sign in", next=target, message=message)
    answer = RedirectResponse(target, 303)
    if tokens:
        answer.set_cookie(
            COOKIE, quote(given, safe=""), httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip
    return answer


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    form = await form_of(request)
    if isinstance(form, Response):
        return form
    answer = RedirectResponse("/sign-in", 303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


# runs


@router.get("/runs")
async def runs(
    request: Request,
    workflow: str = "",
    status: str = "",
    since: str = "",
    before: str = "",
    part: str = "",
) -> Response:
    """Newest first, a page at a time (`before`: the start of the last run shown)."""
    try:
        after = _day(since)
        cursor = datetime.fromisoformat(before) if before else None
        client = await engine(request)
        found = await client.list(
            workflow or None, status or None, started_after=after, started_before=cursor,
            limit=PAGE_SIZE + 1,
        )  # fmt: skip
    except ValueError as exc:
        return refused(request, 400, str(exc))
    except WorkflowError as exc:
        return problem(request, exc)
    more = found[PAGE_SIZE - 1].started_at.isoformat() if len(found) > PAGE_SIZE else None
    filters = {"workflow": workflow, "status": status, "since": since}
    name = "runs_table.html" if part == "table" else "runs.html"
    return render(request, name, title="Runs", runs=found[:PAGE_SIZE], more=more,
                  filters=filters, states=LISTED_STATES)  # fmt: skip


def _day(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"since: give a date like 2026-01-31, not {text!r}") from None


@router.get("/runs/{execution_id:path}/events")
async def events(execution_id: str, request: Request) -> Response:
    """The run's event stream (the API's own) for the page's script, which cannot send
    the bearer header but carries the session cookie."""
    try:
        return await open_stream(await engine(request), execution_id, request)
    except WorkflowError as exc:
        return problem(request, exc)


@router.get("/runs/{execution_id:path}/approve/{step_id}")
async def approve_form(execution_id: str, step_id: str, request: Request) -> Response:
    try:
        client = await engine(request)
        status, account = await asyncio.gather(
            client.status(execution_id), run_account(client, execution_id)
        )
    except WorkflowError as exc:
        return problem(request, exc)
    step = _waiting_step(account, step_id)
    if step is None:
        return refused(request, 404, f"run {execution_id} has no wait_for_signal step {step_id!r}")
    return render(request, "approve.html", title=f"Approve {step_id}", run_id=execution_id,
                  step=step, status=status, fields=form_fields(step.outputs),
                  waiting=status.waiting_signals.get(step_id))  # fmt: skip


@router.post("/runs/{execution_id:path}/approve/{step_id}")
async def approve(execution_id: str, step_id: str, request: Request) -> Response:
    form = await form_of(request)
    if isinstance(form, Response):
        return form
    try:
        client = await engine(request)
        status, account = await asyncio.gather(
            client.status(execution_id), run_account(client, execution_id)
        )
        step = _waiting_step(account, step_id)
        if step is None:
            raise SignalRefused(f"no wait_for_signal step {step_id!r} in run {execution_id}")
        fields = form_fields(step.outputs)
        for field in fields:
            field.value = form.get(field.name, "")
        try:
            await client.signal(execution_id, step.signal, payload_of(step.outputs, form))
        except SignalRefused as exc:
            detail = str(exc).split(": ", 1)[-1]
            message = field_errors(fields, detail)
            return render(request, "approve.html", 400, title=f"Approve {step_id}",
                          run_id=execution_id, step=step, status=status, fields=fields,
                          waiting=status.waiting_signals.get(step_id),
                          message=message or "the run refused the answer")  # fmt: skip
    except WorkflowError as exc:
        return problem(request, exc)
    return RedirectResponse(f"/runs/{quote(execution_id, safe='')}?done=approved", 303)


def _waiting_step(account: Any, step_id: str) -> WaitForSignalStep | None:
    if account.definition is None:
        return None
    for step in account.definition.workflow.steps:
        if step.id == step_id and isinstance(step, WaitForSignalStep):
            return step
    return None


@router.post("/runs/{execution_id:path}/act/{action}")
async def act(execution_id: str, action: str, request: Request) -> Response:
    """Pause, resume, cancel or rerun, as the API does them."""
    form = await form_of(request)
    if isinstance(form, Response):
        return form
    target = execution_id
    try:
        client = await engine(request)
        if action in ("pause", "resume"):
            await client.signal(execution_id, action)
        elif action == "cancel":
            await asyncio.wait_for(client.cancel(execution_id), 10)
        elif action == "budget":
            await client.raise_budget(
                execution_id,
                max_cost_usd=_number(form.get("max_cost_usd", ""), float),
                max_tokens=_number(form.get("max_tokens", ""), int),
                step=form.get("scope") if form.get("scope") not in (None, "", "run") else None,
            )
        elif action == "rerun":
            texts = {
                name[len("var.") :]: value
                for name, value in form.items()
                if name.startswith("var.") and value != ""
            }
            rerun = await client.rerun(
                execution_id, from_step=form.get("from_step") or None, variable_texts=texts
            )
            target = rerun.execution_id
        else:
            return refused(request, 404, f"no action {action!r}")
    except TimeoutError:
        pass  # cancelling: the page shows it end
    except ValueError as exc:
        return refused(request, 400, str(exc))
    except WorkflowError as exc:
        return problem(request, exc)
    return RedirectResponse(f"/runs/{quote(target, safe='')}?done={action}", 303)


async def _read(client: EngineClient, execution_id: str) -> tuple[ExecutionStatus, RunAccount]:
    """The run's history, then its status: from the history when it completed (no query
    replays a finished run), else from the run's `status` query."""
    account = await run_account(client, execution_id)
    status = account.completed_status() or await client.status(execution_id)
    return status, account


async def _watched(
    request: Request, client: EngineClient, execution_id: str
) -> tuple[ExecutionStatus, RunAccount]:
    """A live refresh of a watched run: the status its one shared poll read last
    (engine/rest_events.py), and its history read once per poll however many pages ask."""
    watch = request.app.state.hub.watches.get(execution_id)
    if watch is None or watch.status is None:
        return await _read(client, execution_id)
    cache: dict[str, tuple[int, asyncio.Task[RunAccount]]] = request.app.state.accounts
    seen = cache.get(execution_id)
    if seen is None or seen[0] != watch.version:
        if len(cache) >= MAX_CACHED_ACCOUNTS:
            cache.clear()
        task = asyncio.ensure_future(run_account(client, execution_id))
        seen = cache[execution_id] = (watch.version, task)
    return watch.status, await asyncio.shield(seen[1])


def _number(text: str, kind: type[float] | type[int]) -> Any:
    if text.strip() == "":
        return None
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None


@router.get("/runs/{execution_id:path}")
async def run_page(
    execution_id: str, request: Request, part: str = "", done: str = "", rerun_from: str = ""
) -> Response:
    try:
        client = await engine(request)
        if part == "live":
            status, account = await _watched(request, client, execution_id)
        else:
            status, account = await _read(client, execution_id)
    except WorkflowError as exc:
        return problem(request, exc)
    view = run_view(status, account)
    if part == "live":
        return render(request, "run_live.html", title=execution_id, run_id=execution_id, view=view)
    steps = [step.id for step in account.definition.workflow.steps] if account.definition else []
    plan = None
    if account.run_input is not None and (not rerun_from or rerun_from in steps):
        with contextlib.suppress(ValueError):
            plan = rerun_plan(account.run_input, status, rerun_from or None)
    return render(request, "run.html", title=execution_id, run_id=execution_id, view=view,
                  done=done, step_ids=steps, variables=account.variables, plan=plan,
                  rerun_from=rerun_from)  # fmt: skip
