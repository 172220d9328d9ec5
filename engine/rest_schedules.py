"""The REST API's schedules (`/schedules`, over engine/schedules.py) and webhook triggers
(`POST /triggers/NAME`, engine/triggers.py); included by engine/rest.py.

Schedules take the API's bearer tokens like every other endpoint (a read-only token lists
and describes). A trigger answers to its own proof instead, checked before anything else:
a bad signature or token is a 401 and nothing starts; a redelivery is a 200 that says it
started nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, model_validator

from engine.rest_deps import Client, Definitions, Write, bearer, known_query
from engine.rest_errors import ApiError, errors
from engine.rest_models import Strict
from engine.schedules import DEFAULT_CATCHUP_WINDOW, DEFAULT_OVERLAP, ScheduleView
from engine.settings import Settings
from engine.triggers import Trigger, load_triggers
from workflows.contracts import LoadedDefinition
from workflows.errors import RunExists

ScheduleName = Annotated[str, PathParam(min_length=1, max_length=200)]
TriggerName = Annotated[str, PathParam(min_length=1, max_length=100)]


class CreateSchedule(Strict):
    """A schedule: its name, the definition (text or a file under DEFINITIONS_DIR), its
    variables, and a cron expression or an interval."""

    name: str = Field(min_length=1, max_length=200)
    yaml: str | None = Field(default=None, min_length=1)
    workflow_file: str | None = Field(default=None, min_length=1, max_length=4096)
    variables: dict[str, Any] = {}
    cron: str | None = Field(default=None, max_length=200, examples=["0 9 * * 1-5"])
    every: str | None = Field(default=None, max_length=50, examples=["30s", "1h"])
    overlap: str = DEFAULT_OVERLAP
    catchup_window: str = DEFAULT_CATCHUP_WINDOW
    offline: bool = False
    paused: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> CreateSchedule:
        if (self.yaml is None) == (self.workflow_file is None):
            raise ValueError("give exactly one of 'yaml' and 'workflow_file'")
        return self


class Triggered(BaseModel):
    execution_id: str
    started: bool
    """False for a redelivery: the run of this delivery exists already."""
    message: str


def include_schedules(app: FastAPI, settings: Settings) -> None:
    """The routes below, and the triggers of TRIGGERS_FILE, loaded (and checked) now."""
    app.state.triggers = load_triggers(settings)
    app.include_router(router)
    app.include_router(trigger_router)


router = APIRouter(dependencies=[Security(bearer), Depends(known_query)], tags=["schedules"])


@router.get("/schedules", responses=errors())
async def list_schedules(client: Client) -> list[ScheduleView]:
    """The namespace's schedules of YAML workflows, by name."""
    return await client.schedules.list()


@router.post("/schedules", dependencies=Write, responses=errors(403, 422))
async def create_schedule(
    body: CreateSchedule, client: Client, definitions: Definitions
) -> ScheduleView:
    """Validate the definition and variables, then create the schedule. A bad cron or
    interval, a taken name or variables that do not fit: 400, nothing created."""
    loaded: LoadedDefinition = await (
        definitions.text(body.yaml) if body.yaml else definitions.file(body.workflow_file or "")
    )
    return await client.schedules.create(
        body.name, loaded, body.variables, cron=body.cron, every=body.every,
        overlap=body.overlap, catchup_window=body.catchup_window, offline=body.offline,
        paused=body.paused,
    )  # fmt: skip


@router.get("/schedules/{name}", responses=errors(404))
async def describe_schedule(name: ScheduleName, client: Client) -> ScheduleView:
    """Next and recent runs, state and policies."""
    return await client.schedules.describe(name)


@router.post("/schedules/{name}/pause", dependencies=Write, responses=errors(403, 404))
async def pause_schedule(name: ScheduleName, client: Client) -> ScheduleView:
    return await client.schedules.pause(name)


@router.post("/schedules/{name}/unpause", dependencies=Write, responses=errors(403, 404))
async def unpause_schedule(name: ScheduleName, client: Client) -> ScheduleView:
    return await client.schedules.unpause(name)


@router.post("/schedules/{name}/trigger", dependencies=Write, responses=errors(403, 404))
async def trigger_schedule(name: ScheduleName, client: Client) -> ScheduleView:
    """Start a run now (also when paused)."""
    return await client.schedules.trigger(name)


@router.delete("/schedules/{name}", dependencies=Write, responses=errors(403, 404))
async def delete_schedule(name: ScheduleName, client: Client) -> dict[str, str]:
    """Delete the schedule; runs it started go on."""
    await client.schedules.delete(name)
    return {"deleted": name}


trigger_router = APIRouter(tags=["triggers"])
"""No bearer token: the gate lets /triggers/ through to the trigger's own proof."""


@trigger_router.post("/triggers/{name}", responses=errors(404, 422))
async def trigger(name: TriggerName, request: Request, client: Client) -> Triggered:
    """Start a run of the trigger's definition from a webhook's JSON body, once per delivery
    id. 401 for a bad signature or token, with nothing started."""
    found: Trigger | None = request.app.state.triggers.get(name)
    if found is None:
        raise ApiError(404, "not_found", f"no trigger {name!r} (TRIGGERS_FILE declares them)")
    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    if not found.authentic(body, headers):
        proof = "token" if found.spec.token_secret else "signature"
        raise ApiError(401, "unauthorized", f"trigger {name}: the {proof} does not match")
    delivery = found.delivery_id(headers)
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "bad_request", f"trigger {name}: the body is not JSON") from None
    run_id = f"{name}-{delivery}"
    try:
        await client.start(
            found.loaded, found.variables(payload), execution_id=run_id, offline=found.spec.offline
        )
    except RunExists:
        return Triggered(
            execution_id=run_id, started=False, message=f"delivery {delivery} was started before"
        )
    return Triggered(execution_id=run_id, started=True, message=f"started {run_id}")
