"""The seed's Python API, `from workflow_engine import WorkflowEngine`, on Temporal.

A thin face over the client API (engine/client.py): the same runs the CLI, the REST API and
the Temporal UI see. Results are the seed's dict shapes.

Where things execute: with no keys, actions or validators given, runs go to the engine's
task queue and whatever worker polls it (on a machine where nothing runs, the local dev
server and a background worker are started, as `starter.py run` does). When keys, actions or
validators are given, this process runs a worker of its own on a queue named after them
(`<TEMPORAL_TASK_QUEUE>-embedded-<digest>`), so the handlers and keys it holds are the ones
that serve its runs; that worker runs while a call of the engine is in progress. Open runs
wait while no such worker runs (the process is gone, or between calls), losing nothing, and
go on when a process with the same registrations calls again (e.g. the same script).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio.worker import Worker

from activities.definitions import load_bundle, load_text_bundle
from activities.endpoints import Endpoint
from activities.registry import (
    ActionSpec,
    ValidatorSpec,
    load_custom_actions,
    load_custom_validators,
    params_models,
    validator_spec,
)
from engine.client import EngineClient
from engine.settings import Settings
from workflows.contracts import ActionInput, LoadedDefinition, RunResult
from workflows.errors import RunFailed, RunNotFound, WorkflowError

ActionHandler = Callable[[dict[str, Any]], Awaitable[Any] | Any]
ValidatorHandler = Callable[[dict[str, Any]], Awaitable[tuple[bool, list[str]]] | Any]


def _serving(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A public call: this process's worker (if it has one) runs while any call is in
    progress and stops when the last one returns, so a script's `asyncio.run(main())` ends
    with no worker of ours left for the event loop to tear down mid-poll."""

    @functools.wraps(method)
    async def call(self: WorkflowEngine, *args: Any, **kwargs: Any) -> Any:
        self._calls += 1
        try:
            return await method(self, *args, **kwargs)
        finally:
            self._calls -= 1
            if self._calls == 0:
                await self._stop_worker()

    return call


class AnyParams(BaseModel):
    """Params of an action registered with `register_action`: whatever the definition gives."""

    model_config = ConfigDict(extra="allow")


class WorkflowEngine:
    """Run YAML workflows durably on Temporal, from Python."""

    def __init__(
        self,
        openai_api_key: str | None = None,
        anthropic_api_key: str | None = None,
        state_store: str | None = None,
        action_registry: Mapping[str, ActionHandler] | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        """
        Args:
            openai_api_key, anthropic_api_key: keys for the model calls of runs this engine
                starts; a worker in this process uses them (keys belong to the worker that
                calls the provider). Without them, the worker that serves the queue uses its
                own environment's keys.
            state_store: where runs' state lives. On Temporal that is the server's history,
                so this is the Temporal address (host:port) to use; by default
                TEMPORAL_ADDRESS, else localhost:7233 (started locally if nothing answers).
            action_registry: custom actions, name to handler (see `register_action`).
            settings: everything else, from the environment by default.
        """
        settings = settings or Settings.from_env()
        if state_store:
            settings = dataclasses.replace(settings, address=state_store)
        keys = {"openai": openai_api_key, "anthropic": anthropic_api_key}
        endpoints = dict(settings.endpoints)
        for provider, key in keys.items():
            if key and _placeholder(key) and not endpoints.get(provider, Endpoint()).base_url:
                _log.warning(
                    "%s_api_key %r is a placeholder: %s calls go to the offline mock provider "
                    "(replies are labelled [offline mock reply ...]); give a real key to call %s",
                    provider, key, provider, provider,
                )  # fmt: skip
                keys[provider] = None
            if keys[provider]:
                endpoints[provider] = Endpoint(
                    api_key=keys[provider], base_url=endpoints.get(provider, Endpoint()).base_url
                )
        self._settings = dataclasses.replace(settings, endpoints=endpoints)
        self._own_keys = sorted(provider for provider, key in keys.items() if key)
        self._actions: dict[str, ActionSpec] = {}
        self._validators: dict[str, ValidatorSpec] = {}
        for name, handler in (action_registry or {}).items():
            self.register_action(name, handler)
        self._client: EngineClient | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._worker: Worker | None = None
        self._calls = 0

    # the seed's methods

    @_serving
    async def execute_file(
        self,
        filepath: str,
        variables: dict[str, Any] | None = None,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a workflow file and return its result: `{execution_id, workflow_name, status,
        outputs, steps, usage}`. With the `execution_id` of an existing run, that run's
        result (waited for) or, if it failed or was cancelled, a rerun of it."""
        client = await self._connect()
        if execution_id is not None:
            with contextlib.suppress(RunNotFound):
                status = await client.status(execution_id)
                if status.execution_status in ("running", "completed"):
                    return _result(await client.result(execution_id))
                return await self.resume_execution(execution_id, variables)
        path = Path(filepath)
        loaded = load_bundle(
            path, str(path), self._params_models(), validators=self._validator_names()
        )
        return await self._execute(loaded, variables, execution_id)

    @_serving
    async def execute_yaml(
        self, yaml_content: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run a workflow given as YAML text (child files are looked up in the current
        directory)."""
        loaded = load_text_bundle(
            yaml_content,
            "<yaml>",
            Path.cwd() / "<yaml>",
            self._params_models(),
            validators=self._validator_names(),
        )
        return await self._execute(loaded, variables, None)

    @_serving
    async def resume_execution(
        self, execution_id: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A new run of a failed or cancelled run's input that reuses every step it
        finished (no model is called again for them); `variables` change what runs again."""
        client = await self._connect()
        rerun = await client.rerun(execution_id, variables=variables)
        return _result(await client.result(rerun.execution_id))

    def register_action(self, name: str, handler: ActionHandler) -> None:
        """A custom action: `handler(params: dict)` (async or not) returns the action's
        value. It runs as an activity on this process's worker, with Temporal's retries."""

        async def run(params: AnyParams, request: ActionInput) -> Any:
            value = handler(params.model_dump())
            return await value if inspect.isawaitable(value) else value

        self._actions[name] = ActionSpec(name, AnyParams, run)

    def register_validator(self, name: str, handler: ValidatorHandler) -> None:
        """A validator that `llm_call` steps name in `validate: [{validator: NAME}]`:
        `handler(outputs: dict)` returns `(is_valid, errors)`; errors re-ask the model. It
        runs as an activity on this process's worker."""
        self._validators[name] = validator_spec(name, handler)

    @_serving
    async def list_executions(
        self, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Runs, newest first: `{execution_id, workflow_name, status, steps_done,
        started_at, closed_at}`."""
        client = await self._connect()
        runs = await client.list(workflow_name, status, limit=limit)
        return [run.model_dump(mode="json") for run in runs]

    @_serving
    async def get_execution_status(self, execution_id: str) -> dict[str, Any]:
        """`{execution_id, workflow_name, status, current_step, completed_steps, started_at,
        updated_at, variables, outputs}` (outputs by step id), as the seed shapes it."""
        client = await self._connect()
        try:
            status = await client.status(execution_id)
        except RunNotFound as exc:
            raise ValueError(str(exc)) from None
        return {
            "execution_id": execution_id,
            "workflow_name": status.workflow_name,
            "status": status.execution_status,
            "current_step": status.running[0] if status.running else None,
            "running_steps": status.running,
            "completed_steps": len(status.finished_steps),
            "started_at": status.started_at.isoformat() if status.started_at else None,
            "updated_at": (status.closed_at or status.started_at).isoformat()
            if status.started_at
            else None,
            "variables": status.variables,
            "outputs": {step_id: step.outputs for step_id, step in status.steps.items()},
            "usage": status.usage.model_dump(),
        }

    @_serving
    async def cancel_execution(self, execution_id: str) -> bool:
        """Cancel a running run (and its running activities); False if it had ended."""
        client = await self._connect()
        try:
            status = await client.status(execution_id)
        except RunNotFound:
            return False
        if status.execution_status != "running":
            return False
        await client.cancel(execution_id)
        return True

    async def close(self) -> None:
        """Stop this process's worker, if it runs one (open runs wait for the next)."""
        await self._stop_worker()

    async def _stop_worker(self) -> None:
        """A graceful shutdown, finished before the call returns: the worker leaves the
        queue registered with nobody, so the next call can start one again."""
        if self._worker_task is None:
            return
        if self._worker is not None:
            await self._worker.shutdown()
        self._worker_task.cancel()  # if it never got as far as running
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker_task
        self._worker_task = self._worker = None

    async def __aenter__(self) -> WorkflowEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # how

    async def _execute(
        self, loaded: LoadedDefinition, variables: dict[str, Any] | None, run_id: str | None
    ) -> dict[str, Any]:
        client = await self._connect()
        started = await client.start(loaded, variables, execution_id=run_id)
        try:
            return _result(await client.result(started.execution_id))
        except RunFailed as exc:
            raise WorkflowError(str(exc)) from None

    def _params_models(self) -> dict[str, type[BaseModel]]:
        custom = load_custom_actions(self._settings.action_modules)
        return params_models({**custom, **self._actions})

    def _validator_names(self) -> set[str]:
        return {*load_custom_validators(self._settings.action_modules), *self._validators}

    def _embedded(self) -> bool:
        return bool(self._actions or self._validators or self._own_keys)

    async def _connect(self) -> EngineClient:
        if self._client is not None:
            if self._embedded() and self._worker_task is None:
                self._worker_task = asyncio.create_task(self._serve(self._client))
            return self._client
        settings = self._settings
        if self._embedded():
            names = [*sorted(self._actions), "|", *sorted(self._validators), "|", *self._own_keys]
            digest = hashlib.sha256(" ".join(names).encode()).hexdigest()[:10]
            settings = dataclasses.replace(
                settings, task_queue=f"{settings.task_queue}-embedded-{digest}"
            )
        client = await EngineClient.connect(
            settings, note=_log.warning, start_worker=not self._embedded()
        )
        if self._embedded():
            client.poller_wait = 5.0  # our worker starts with each call: let it poll first
        if self._embedded():
            self._worker_task = asyncio.create_task(self._serve(client))
        self._client = client
        return client

    async def _serve(self, client: EngineClient) -> None:
        from engine.activity_catalog import build_actions
        from engine.plugin import EnginePlugin

        settings = client.settings
        plugin = EnginePlugin(
            settings,
            actions={**build_actions(settings), **self._actions},
            validators={**load_custom_validators(settings.action_modules), **self._validators},
        )
        self._worker = worker = Worker(
            client.temporal, task_queue=settings.task_queue, plugins=[plugin]
        )
        quiet = _OneLine()
        activity_log = logging.getLogger("temporalio.activity")
        activity_log.addFilter(quiet)
        try:
            await worker.run()
        finally:
            activity_log.removeFilter(quiet)


_log = logging.getLogger("workflow_engine")
"""What the engine tells its user (a mock standing in for a provider, a server it started):
warnings reach the terminal through Python's last-resort handler unless logging is set up."""
_PLACEHOLDER = re.compile(
    r"(sk-)?(your[-_ ]?(openai[-_ ]?|anthropic[-_ ]?)?(api[-_ ]?)?key([-_ ]?here)?|x+|\.+|<[^>]*>"
    r"|\.\.\.|changeme|placeholder|todo)",
    re.IGNORECASE,
)


class _OneLine(logging.Filter):
    """A failed attempt logged by this process's worker is one line, not a traceback in the
    user's terminal: Temporal retries it, and the run's result says how it ended."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.msg}: {record.exc_info[1]}"
            record.exc_info = None
            record.exc_text = None
        return True


def _placeholder(key: str) -> bool:
    """`your-key-here`, `sk-...`, `<key>`: what examples write where a key goes."""
    return bool(_PLACEHOLDER.fullmatch(key.strip()))


def _result(result: RunResult) -> dict[str, Any]:
    return result.model_dump(mode="json")
