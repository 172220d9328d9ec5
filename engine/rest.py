"""The REST API (`starter.py serve`): a FastAPI skin over the client API (engine/client.py).

The seed's three endpoints keep the seed's shapes; the rest start from inline YAML, wait for
results, list, signal, pause, resume, rerun, validate and stream progress. Every answer is
JSON (the event stream aside), every error an `ErrorBody` with a documented status: the
gate (engine/rest_auth.py) answers 401, 413 and 429 before anything runs, and
engine/rest_errors.py turns the client API's errors into 400, 404, 409, 422 and 503, never a
traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, overload

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from pydantic import BeforeValidator

from engine.client import EngineClient
from engine.client_models import ExecutionStatus, Rerun
from engine.rest_auth import ApiConfig, Gate, is_loopback
from engine.rest_definitions import DefinitionLoader
from engine.rest_deps import (
    AppSettings,
    Client,
    ClientFactory,
    Connection,
    Definitions,
    Write,
    bearer,
    known_query,
)
from engine.rest_errors import ENDED, ApiError, errors, handle_errors, json_errors, openapi
from engine.rest_evals import (
    EvaluationRequest,
    EvaluationStarted,
    evaluation_report,
    start_evaluation,
)
from engine.rest_events import EventStream, StatusHub, StreamSlots, open_stream
from engine.rest_models import (
    EVENT_NAMES,
    MAX_ID_LENGTH,
    SIGNAL_PATTERN,
    Cancelled,
    ExecuteRequest,
    ExecuteYamlRequest,
    Health,
    Outcome,
    Page,
    ProblemOut,
    RerunRequest,
    SeedStatus,
    Signalled,
    Started,
    Validated,
    ValidateRequest,
)
from engine.rest_schedules import include_schedules
from engine.run_states import ListedState
from engine.settings import Settings
from engine.web import add_pages
from workflows.contracts import LoadedDefinition
from workflows.errors import DefinitionError, RunFailed, UsageError

CANCEL_WAIT_SECONDS = 10.0
MAX_RESULT_WAIT_SECONDS = 300.0
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""No control characters: a NUL in a visibility query breaks the dev server's SQLite."""
log = logging.getLogger("engine.rest")

ExecutionId = Annotated[
    str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, description="The run's id.")
]


def default_factory(settings: Settings) -> ClientFactory:
    """Like the CLI on a loopback address (a local dev server and worker are started when
    missing); against any other server, only connect."""
    local = is_loopback(settings.address.rpartition(":")[0] or settings.address)

    async def connect() -> EngineClient:
        return await EngineClient.connect(
            settings, note=log.info, start_local=local, start_worker=local
        )

    return connect


def create_app(
    settings: Settings,
    config: ApiConfig | None = None,
    client_factory: ClientFactory | None = None,
) -> FastAPI:
    config = config or ApiConfig()
    app = FastAPI(
        title="LLM YAML workflows",
        version="1.0",
        description="Start, watch and steer durable LLM workflows written in YAML. Every "
        "endpoint but /health and /openapi.json needs `Authorization: Bearer <token>`.",
        redoc_url=None,
    )
    app.state.connection = Connection(client_factory or default_factory(settings), settings.address)
    app.state.settings = settings
    app.state.definitions = DefinitionLoader(settings)
    app.state.hub = StatusHub()
    app.state.streams = StreamSlots(config.max_streams_per_token, config.max_streams)
    app.include_router(router)
    include_schedules(app, settings)
    app.add_api_route("/health", health, methods=["GET"])
    handle_errors(app)
    app.add_middleware(Gate, config=config)
    add_pages(app, config)  # the workbench (engine/web.py), its session in front of the gate
    # FastAPI's documented way to replace the schema; its hints declare a method
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    return app


async def health() -> Health:
    """Liveness: the API answers (it does not ask Temporal). No token needed."""
    return Health()


# endpoints

router = APIRouter(dependencies=[Security(bearer), Depends(known_query)])
"""Every endpoint but /health; the gate has checked the token before any of them runs."""
SEED: list[str | Enum] = ["seed"]
EVENTS_DOC = {
    "description": "Server-Sent Events: step_started, step_finished, step_failed, then end",
    "content": {
        "text/event-stream": {
            "schema": {
                "description": "One event (OpenAPI 3.1: the schema of each event)",
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": EVENT_NAMES},
                    "id": {"type": "string"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/StepEvent"},
                                {"$ref": "#/components/schemas/EndEvent"},
                            ]
                        },
                    },
                },
            }
        }
    },
}


@router.post("/workflows/execute", dependencies=Write, responses=errors(403, 409, 413, 422),
             tags=SEED)  # fmt: skip
async def execute(body: ExecuteRequest, client: Client, definitions: Definitions) -> Started:
    """Start a run of a definition file under DEFINITIONS_DIR (the seed's endpoint)."""
    return await _start(client, await definitions.file(body.workflow_file), body)


@router.post("/evaluations", dependencies=Write, responses=errors(400, 403, 409, 422))
async def evaluate(
    body: EvaluationRequest, client: Client, settings: AppSettings
) -> EvaluationStarted:
    """Start an evaluation of a definition on a dataset (files under DEFINITIONS_DIR)."""
    return await start_evaluation(client, body, settings)


@router.get("/evaluations/{execution_id}", responses=errors(404, 409))
async def evaluation(execution_id: ExecutionId, client: Client) -> dict[str, Any]:
    """An ended evaluation's report (docs/evaluations.md); 409 while it runs."""
    return await evaluation_report(client, execution_id)


@router.get("/workflows/status/{execution_id}", responses=errors(404), tags=SEED)
async def seed_status(execution_id: ExecutionId, client: Client) -> SeedStatus:
    """The run's status in the seed's shape (the seed's endpoint)."""
    return SeedStatus.of(await client.status(execution_id))


@router.post("/workflows/cancel/{execution_id}", dependencies=Write,
             responses=errors(403, 404, 409), tags=SEED)  # fmt: skip
async def cancel(execution_id: ExecutionId, client: Client) -> Cancelled:
    """Cancel a running run and its running activities (the seed's endpoint); waits up to
    10 s for it to end, else answers `cancelling`. A run that has ended: 409."""
    state = await client.state(execution_id)
    if state != "running":
        raise ApiError(409, "conflict", f"run {execution_id} {ENDED} ({state}): nothing to cancel")
    try:
        status = await asyncio.wait_for(client.cancel(execution_id), CANCEL_WAIT_SECONDS)
    except TimeoutError:
        return Cancelled(execution_id=execution_id, status="cancelling", finished_steps=[])
    return Cancelled(
        execution_id=execution_id, status="cancelled", finished_steps=status.finished_steps
    )


@router.post("/workflows/execute-yaml", dependencies=Write,
             responses=errors(403, 409, 413, 422))  # fmt: skip
async def execute_yaml(
    body: ExecuteYamlRequest, client: Client, definitions: Definitions
) -> Started:
    """Start a run of a definition given as YAML text."""
    return await _start(client, await definitions.text(body.yaml), body)


@router.post("/workflows/validate", responses=errors(413))
async def validate(body: ValidateRequest, definitions: Definitions) -> Validated:
    """Check a definition (text, or a file under DEFINITIONS_DIR) without running it: every
    problem, located. Needs no Temporal server."""
    try:
        if body.yaml is not None:
            loaded = await definitions.text(body.yaml)
        else:
            loaded = await definitions.file(body.workflow_file or "")
    except DefinitionError as exc:
        return Validated(valid=False, problems=[ProblemOut.of(p) for p in exc.problems])
    warnings = [ProblemOut.of(warning) for warning in loaded.warnings]
    return Validated(valid=True, workflow_name=loaded.definition.workflow.name, warnings=warnings)


@router.get("/workflows", responses=errors())
async def list_runs(
    client: Client,
    workflow: Annotated[
        str | None, Query(max_length=200, pattern=PRINTABLE, description="A definition's name")
    ] = None,
    status: ListedState | None = None,
    started_after: Moment | None = None,
    started_before: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    page: Annotated[str | None, Query(max_length=64, description="`next_page` of a page")] = None,
) -> Page:
    """Runs, newest first, from Temporal's visibility store, a page at a time."""
    before = _utc(started_before)
    if page:
        try:
            cursor = _utc(datetime.fromisoformat(page))
        except ValueError:
            raise ApiError(400, "bad_request", "page: give the next_page of a page") from None
        before = min(before, cursor) if before else cursor
    runs = await client.list(
        workflow, status, started_after=_utc(started_after), started_before=before,
        limit=limit + 1,
    )  # fmt: skip
    more = len(runs) > limit
    runs = runs[:limit]
    return Page(executions=runs, next_page=runs[-1].started_at.isoformat() if more else None)


@router.get("/workflows/{execution_id}", responses=errors(404))
async def run_status(execution_id: ExecutionId, client: Client) -> ExecutionStatus:
    """Steps done (with outputs, attempts, durations and tokens), running, paused, usage."""
    return await client.status(execution_id)


@router.get("/workflows/{execution_id}/result", responses=errors(404))
async def result(
    execution_id: ExecutionId,
    client: Client,
    timeout: Annotated[float, Query(ge=0, le=MAX_RESULT_WAIT_SECONDS)] = 30.0,
) -> Outcome:
    """Wait up to `timeout` seconds for the run's result. Always 200 for a run that
    exists: `status` says whether it completed (with `result`), ended otherwise (with
    `error`), or is still `running`."""
    state = await client.state(execution_id)
    try:
        if state == "running":
            found = await asyncio.wait_for(client.result(execution_id), timeout)
        else:
            found = await client.result(execution_id)
    except TimeoutError:
        return Outcome(execution_id=execution_id, status="running")
    except RunFailed as exc:
        return Outcome(execution_id=execution_id, status=exc.state, error=exc.reason)
    return Outcome(execution_id=execution_id, status="completed", result=found)


@router.get("/workflows/{execution_id}/events", response_class=EventStream,
            responses={200: EVENTS_DOC, **json_errors(404, 429)})  # fmt: skip
async def events(execution_id: ExecutionId, client: Client, request: Request) -> EventStream:
    """Server-Sent Events of the run's progress until it ends: `step_started`,
    `step_finished` and `step_failed` (each with the run's tokens and cost so far), then one
    `end` with the outputs or the failure. Past API_MAX_STREAMS_PER_TOKEN streams open for
    the token, or API_MAX_STREAMS in all: 429 with `Retry-After`."""
    return await open_stream(client, execution_id, request)


@router.post("/workflows/{execution_id}/signal/{name}", dependencies=Write,
             responses=errors(403, 404, 409, 413))  # fmt: skip
async def signal(
    execution_id: ExecutionId,
    name: Annotated[str, PathParam(pattern=SIGNAL_PATTERN, description="e.g. approve")],
    client: Client,
    payload: Annotated[dict[str, Any] | None, Body(description="The signal's payload")] = None,
) -> Signalled:
    """Send a signal, e.g. the one a `wait_for_signal` step waits for; its payload becomes
    that step's outputs."""
    return await _signal(client, execution_id, name, payload)


@router.post("/workflows/{execution_id}/pause", dependencies=Write,
             responses=errors(403, 404, 409))  # fmt: skip
async def pause(execution_id: ExecutionId, client: Client) -> Signalled:
    """No new step starts (running ones finish) until `resume`."""
    return await _signal(client, execution_id, "pause", None)


@router.post("/workflows/{execution_id}/resume", dependencies=Write,
             responses=errors(403, 404, 409))  # fmt: skip
async def resume(execution_id: ExecutionId, client: Client) -> Signalled:
    """Let a paused run start steps again (a new run of an ended one is `rerun`)."""
    return await _signal(client, execution_id, "resume", None)


@router.post("/workflows/{execution_id}/rerun", dependencies=Write,
             responses=errors(403, 404, 409, 413))  # fmt: skip
async def rerun(execution_id: ExecutionId, body: RerunRequest, client: Client) -> Rerun:
    """A new run of the same input that takes the old run's finished steps as they are;
    `from_step` and every step that waits for it run again, with `variables` changed."""
    return await client.rerun(execution_id, from_step=body.from_step, variables=body.variables)


# how


async def _start(
    client: EngineClient, loaded: LoadedDefinition, body: ExecuteRequest | ExecuteYamlRequest
) -> Started:
    started = await client.start(
        loaded,
        body.variables,
        execution_id=body.execution_id,
        offline=body.offline,
        reuse_id=body.reuse_id,
    )
    run_id = started.execution_id
    return Started(
        execution_id=run_id,
        message=f"started {started.workflow_name}; follow it at /workflows/{run_id}/events",
        workflow_name=started.workflow_name,
        mocked_providers=started.mocked_providers,
        ui_url=client.ui_link(run_id),
    )


async def _signal(
    client: EngineClient, execution_id: str, name: str, payload: dict[str, Any] | None
) -> Signalled:
    """A step's signal is sent as an update: a payload that does not fit the waiting step
    (or a name no step waits for) is refused with 400 and the run keeps waiting."""
    answered = await client.signal(execution_id, name, payload)
    return Signalled(execution_id=execution_id, signal=name, answer=answered.answer)


def _iso(value: Any) -> Any:
    """Query dates as ISO 8601 text only (pydantic would also read `0.5` as a timestamp)."""
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("give a date-time like 2026-01-31T12:00:00Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso)]


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def serve(settings: Settings, config: ApiConfig, host: str, port: int) -> None:
    """Serve the API until interrupted; refuses a non-loopback address without tokens."""
    import uvicorn

    from engine.logs import configure_logging

    if not config.tokens and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} without API tokens: set API_TOKENS "
            "(name=token,...) or API_TOKENS_FILE, or listen on 127.0.0.1"
        )
    configure_logging()
    if not config.tokens:
        log.warning("no API tokens configured: every request from this machine is allowed")
    app = create_app(settings, config)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None)
    )
    log.info("REST API on http://%s:%d (OpenAPI at /openapi.json, workbench at /)", host, port)
    await server.serve()
