"""The client API: what the CLI, the REST API, the seed's `WorkflowEngine` and users' own
programs call to validate, start, watch, signal, cancel, rerun and replay runs.

Async and typed: definitions in (a file, YAML text, or a parsed model, validated first),
pydantic models out, and every error a `WorkflowError` (see workflows/errors.py).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.worker import Replayer

from activities.definitions import budget_prices, called_models
from activities.endpoints import is_configured
from engine.client_models import (
    Execution,
    ExecutionStatus,
    Rerun,
    Signalled,
    Started,
    StreamedText,
    state_of,
)
from engine.definition_files import load_file, load_yaml
from engine.local_stack import ensure_server, is_local_stack
from engine.local_stack import ensure_worker as ensure_local_worker
from engine.run_states import VISIBILITY_NAMES, RunState
from engine.settings import Settings
from engine.temporal_errors import Where, temporal_errors
from workflows import search_attributes
from workflows.contracts import (
    BudgetStatus,
    LoadedDefinition,
    RaiseBudget,
    RunInput,
    RunResult,
    RunStatus,
)
from workflows.definition import Definition
from workflows.errors import (
    RunEnded,
    RunExists,
    RunFailed,
    RunNotFound,
    SignalRefused,
    StatusUnavailable,
    TemporalError,
    TemporalUnavailable,
    UsageError,
    WorkflowError,
)
from workflows.interpreter import YamlWorkflow
from workflows.providers import MOCK, provider_spec
from workflows.rerun import rerun_plan
from workflows.routing import route
from workflows.scripts import Script
from workflows.validation import read_text_value, resolve_variables, typed_variables

if TYPE_CHECKING:
    from engine.schedules import Schedules

REFUSE_USED_IDS = WorkflowIDReusePolicy.REJECT_DUPLICATE
"""A new run's id must be one no run has (running, or ended and kept in history)."""
RECONNECT_EVERY_SECONDS = 1.0
RUN_SIGNALS = {"pause", "resume"}
"""Signals the run itself handles; every other name is a step's, sent as an update."""
UPDATE_TIMEOUT = timedelta(seconds=10)
QUERY_TIMEOUT = timedelta(seconds=5)
"""A run whose worker is gone (but was seen polling lately) leaves a query waiting; the
caller gets StatusUnavailable after this instead of waiting with it."""


class EngineClient:
    """One connection to a Temporal namespace and the engine's task queue."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        note: Callable[[str], None] | None = None,
        *,
        start_worker: bool = True,
    ) -> None:
        self.temporal = client
        self.settings = settings
        self._note = note or (lambda message: None)
        self._start_worker = start_worker
        """Whether to make sure a worker polls the queue (the local stack's, if none does);
        off when the caller runs its own worker."""
        self.poller_wait = 0.0
        """Seconds a status query waits for a worker that has just started to poll."""

    @classmethod
    async def connect(
        cls,
        settings: Settings | None = None,
        *,
        note: Callable[[str], None] | None = None,
        start_local: bool = True,
        start_worker: bool = True,
    ) -> EngineClient:
        """Connect; with `start_local`, a loopback address where nothing listens gets the
        local dev server (and, with `start_worker`, a background worker when runs start), as
        on a fresh machine."""
        settings = settings or Settings.from_env()
        client = await ensure_server(settings, note or (lambda message: None), start_local)
        return cls(client, settings, note, start_worker=start_worker)

    @classmethod
    def offline(cls, settings: Settings) -> EngineClient:
        """A client without a connection: loads definitions and replays history files."""
        return cls(None, settings)  # type: ignore[arg-type]  # never asks Temporal

    @property
    def schedules(self) -> Schedules:
        """Runs on a cron or an interval, as Temporal Schedules (engine/schedules.py)."""
        from engine.schedules import Schedules

        return Schedules(self)

    # definitions

    def load_file(self, path: str | Path) -> LoadedDefinition:
        return load_file(path, self.settings)

    def load_yaml(
        self, text: str, name: str = "<yaml>", base: Path | None = None
    ) -> LoadedDefinition:
        return load_yaml(text, self.settings, name, base)

    # runs

    async def start(
        self,
        definition: LoadedDefinition | Definition | str | Path,
        variables: dict[str, Any] | None = None,
        *,
        execution_id: str | None = None,
        offline: bool = False,
        reuse_id: bool = False,
        script: Script | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> Started:
        """Validate and start a run; `definition` is a loaded bundle, a parsed model or a
        file path. Variables are checked against the definition before anything starts.
        An `execution_id` some run has (running, or ended and kept) is refused (RunExists)
        unless `reuse_id`; a reused id's runs still never share idempotency keys or files
        (each run chain's first run id keys them), and a running run's id is never reused."""
        loaded = self._loaded(definition)
        run_input = self.run_input(loaded, variables, offline=offline, script=script)
        await self.ensure_worker()
        name = loaded.definition.workflow.name
        run_id = execution_id or f"{name}-{uuid.uuid4().hex[:12]}"
        policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE if reuse_id else REFUSE_USED_IDS
        try:
            with self._errors(run_id):
                await self.temporal.start_workflow(
                    YamlWorkflow.run,
                    run_input,
                    id=run_id,
                    task_queue=self.settings.task_queue,
                    id_reuse_policy=policy,
                    search_attributes=search_attributes,
                )
        except RunExists:
            raise RunExists(await self._taken(run_id, reuse_id)) from None
        mocked = run_input.mock_providers
        return Started(execution_id=run_id, workflow_name=name, mocked_providers=mocked)

    def run_input(
        self,
        definition: LoadedDefinition | Definition | str | Path,
        variables: dict[str, Any] | None = None,
        *,
        offline: bool = False,
        script: Script | None = None,
    ) -> RunInput:
        """What a run of `definition` starts from, checked (variables against the definition)
        but not started: `start`, schedules and triggers all start from it."""
        loaded = self._loaded(definition)
        for warning in loaded.warnings:
            self._note(str(warning))
        variables = dict(variables or {})
        resolve_variables(loaded.definition, variables)
        return RunInput(
            definition=loaded.definition,
            children=loaded.children,
            variables=variables,
            mock_providers=self._mocked(loaded, offline) if script is None or offline else [],
            llm_task_queue=self.settings.llm_task_queue,
            action_task_queue=self.settings.action_task_queue,
            prices=budget_prices(loaded, self.settings.prices),
            script=script,
        )

    async def _taken(self, execution_id: str, reuse_id: bool) -> str:
        """Why a new run cannot have `execution_id`, in one line."""
        try:
            state = await self.state(execution_id)
        except WorkflowError:
            state = "unknown"
        if state == "running" or reuse_id:
            return (
                f"a run with id {execution_id!r} is {state}: another run can take its id only "
                "once it has ended (cancel it, or start under a new id)"
            )
        return (
            f"a run with id {execution_id!r} exists already ({state}); start under a new id, "
            'or ask to reuse it (reuse_id=True, `--reuse-id`, REST "reuse_id": true)'
        )

    async def execute(
        self,
        definition: LoadedDefinition | Definition | str | Path,
        variables: dict[str, Any] | None = None,
        **options: Any,
    ) -> RunResult:
        started = await self.start(definition, variables, **options)
        return await self.result(started.execution_id)

    async def result(self, execution_id: str) -> RunResult:
        """Wait for a run's result, through server restarts; RunFailed says why it did not
        complete (failed, cancelled, terminated, timed out)."""
        handle = await self._handle(execution_id)
        lost = False
        while True:
            try:
                with self._errors(execution_id):
                    result = await handle.result()
            except TemporalUnavailable as exc:
                if not lost:
                    self._note(
                        f"lost the Temporal server ({exc.detail}); waiting for it to come back"
                    )
                    lost = True
                await asyncio.sleep(RECONNECT_EVERY_SECONDS)
                continue
            if lost:
                self._note("the Temporal server is back")
            return result

    async def status(self, execution_id: str) -> ExecutionStatus:
        """Steps done, running, outputs and usage so far (a worker answers, for ended runs
        too), with Temporal's state of the run."""
        handle = await self._handle(execution_id)
        with self._errors(execution_id):
            description = await handle.describe()
        await self.ensure_worker()
        where = Where(self.settings.address, self.settings.namespace, execution_id)
        status = await _status_query(handle, where, self.poller_wait)
        state = state_of(description.status)
        if state != "running":
            status.running = []  # what was running when it ended is not running now
        return ExecutionStatus(
            **status.model_dump(),
            execution_id=execution_id,
            execution_status=state,
            started_at=description.start_time,
            closed_at=description.close_time,
            **(await self._heartbeats(description) if state == "running" else {}),
        )

    async def _heartbeats(self, description: WorkflowExecutionDescription) -> dict[str, Any]:
        """What the run's pending calls say in their heartbeats: waits for capacity, and
        streamed replies so far."""
        waits: list[str] = []
        streams: list[StreamedText] = []
        for pending in description.raw_description.pending_activities:
            if not pending.heartbeat_details.payloads:
                continue
            with contextlib.suppress(Exception):  # details of another shape: not for us
                [detail] = await self.temporal.data_converter.decode(
                    pending.heartbeat_details.payloads
                )
                if isinstance(detail, str) and detail.startswith("waiting for "):
                    waits.append(detail)
                elif isinstance(detail, dict) and isinstance(detail.get("stream"), dict):
                    piece = detail["stream"]
                    streams.append(StreamedText(activity_id=pending.activity_id, **piece))
        return {"waiting_for": waits, "streaming": streams}

    async def list(
        self,
        workflow_name: str | None = None,
        status: str | None = None,
        *,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int = 100,
    ) -> list[Execution]:
        """Runs, newest first, from Temporal's visibility store."""
        query = "WorkflowType = 'YamlWorkflow'"
        if workflow_name:
            query += f" AND {search_attributes.DEFINITION_NAME.name} = {_quoted(workflow_name)}"
        if status:
            if status not in VISIBILITY_NAMES:
                raise UsageError(
                    f"unknown status {status!r}: use one of {', '.join(sorted(VISIBILITY_NAMES))}"
                )
            query += f" AND ExecutionStatus = '{VISIBILITY_NAMES[status]}'"
        if started_after:
            query += f" AND StartTime >= '{started_after.isoformat()}'"
        if started_before:
            query += f" AND StartTime < '{started_before.isoformat()}'"
        found = []
        with self._errors():
            async for execution in self.temporal.list_workflows(query, limit=limit):
                names = execution.typed_search_attributes
                found.append(
                    Execution(
                        execution_id=execution.id,
                        workflow_name=names.get(search_attributes.DEFINITION_NAME),
                        status=state_of(execution.status),
                        steps_done=names.get(search_attributes.STEPS_DONE),
                        cost_usd=names.get(search_attributes.COST_USD),
                        started_at=execution.start_time,
                        closed_at=execution.close_time,
                    )
                )
        return found

    async def cancel(self, execution_id: str) -> ExecutionStatus:
        """Cancel a run and its running activities; waits until it has ended."""
        handle = await self._handle(execution_id)
        with self._errors(execution_id):
            await handle.cancel()
        with contextlib.suppress(RunFailed), self._errors(execution_id):
            await handle.result()
        return await self.status(execution_id)

    async def raise_budget(
        self,
        execution_id: str,
        *,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
        step: str | None = None,
    ) -> BudgetStatus:
        """New limits for a run's budget (or one step's), through the run's `budget` update:
        a call paused on it goes on once it fits. A bad request is refused by the run."""
        handle = await self._handle(execution_id)
        request = RaiseBudget(max_cost_usd=max_cost_usd, max_tokens=max_tokens, step=step)
        try:
            with self._errors(execution_id):
                status: BudgetStatus = await handle.execute_update(
                    "budget", request, result_type=BudgetStatus
                )
                return status
        except SignalRefused as exc:
            raise UsageError(f"{execution_id} refused the budget: {exc}") from None
        except TemporalError as exc:
            raise UsageError(f"{execution_id}: cannot change its budget: {exc.detail}") from None

    async def signal(self, execution_id: str, name: str, payload: Any = None) -> Signalled:
        """Send a step's signal as an update, so the run checks it against the waiting
        step's declared outputs and answers at once: SignalRefused (the run keeps waiting)
        or its acceptance. `pause` and `resume` are plain signals."""
        handle = await self._handle(execution_id)
        payload = {} if payload is None else payload
        try:
            with self._errors(execution_id):
                if name in RUN_SIGNALS:
                    await handle.signal(name, payload)
                    return Signalled(execution_id=execution_id, signal=name, answer="sent")
                answer = await handle.execute_update(
                    name, payload, result_type=str, rpc_timeout=UPDATE_TIMEOUT
                )
        except SignalRefused as exc:
            raise SignalRefused(f"{execution_id} refused signal {name!r}: {exc}") from None
        except TemporalUnavailable:
            raise StatusUnavailable(
                f"{execution_id} did not answer signal {name!r} within "
                f"{UPDATE_TIMEOUT.total_seconds():.0f} s (no worker polls its task queue?)"
            ) from None
        except (TemporalError, RunEnded, RunNotFound):
            await self._refuse_if_ended(execution_id, name)
            raise
        return Signalled(execution_id=execution_id, signal=name, answer=answer)

    async def _refuse_if_ended(self, execution_id: str, name: str) -> None:
        """A signal to a run that has ended says how it ended, not Temporal's words."""
        state = await self.state(execution_id)
        if state in ("running", "unknown"):
            return
        again = "" if state == "completed" else f"; run it again: starter.py resume {execution_id}"
        raise RunEnded(
            f"{execution_id} was {state}: signal {name!r} reaches only a running run{again}"
        )

    async def rerun(
        self,
        execution_id: str,
        *,
        from_step: str | None = None,
        variables: dict[str, Any] | None = None,
        variable_texts: Mapping[str, str] | None = None,
    ) -> Rerun:
        """A new run of the same input that takes the old run's finished steps (and the
        finished items of an unfinished for_each) as they are; `from_step` and every step
        that waits for it run again; `variables` change what runs again, as do
        `variable_texts` (the CLI's --var), read by the run's definition as `run` reads them."""
        old = await self._handle(execution_id)
        await self.ensure_worker()
        with self._errors(execution_id):
            history = await old.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [previous] = await self.temporal.data_converter.decode(started.input.payloads, [RunInput])
        variables = {**(variables or {}), **_read_texts(previous.definition, variable_texts or {})}
        status = await self.status(execution_id)
        try:
            plan = rerun_plan(previous, status, from_step)
        except ValueError as exc:
            raise UsageError(f"cannot rerun {execution_id} from {from_step}: {exc}") from None
        new_id = f"{execution_id}-resumed-{uuid.uuid4().hex[:6]}"
        with self._errors(new_id):
            await self.temporal.start_workflow(
                YamlWorkflow.run,
                previous.model_copy(
                    update={
                        "variables": {**previous.variables, **(variables or {})},
                        "reuse": plan.reuse,
                        "reuse_items": plan.reuse_items,
                        "signals": {},
                        "paused": False,
                        "started_at": None,
                        "budgets": {},  # a rerun starts from the definition's budgets
                    }
                ),
                id=new_id,
                task_queue=self.settings.task_queue,
            )
        return Rerun(
            execution_id=new_id,
            rerun_of=execution_id,
            reused_steps=list(plan.reuse),
            reused_items=plan.item_count,
            saved=plan.saved,
        )

    async def replay(self, history: WorkflowHistory | str) -> int:
        """Replay a run's history (or a run by id) against this code; raises on any
        nondeterminism. Returns the number of events replayed."""
        from engine.plugin import EnginePlugin

        if isinstance(history, str):
            handle = await self._handle(history)
            with self._errors(history):
                history = await handle.fetch_history()
        # The worker's own wiring: workflow, converter, runner and failure types.
        replayer = Replayer(workflows=[], plugins=[EnginePlugin(self.settings)])
        await replayer.replay_workflow(history)
        return len(history.events)

    async def replay_checked(
        self, execution_id: str | None, path: str | Path | None = None
    ) -> tuple[str, int]:
        """Replay a run by id, or a history file: its name and the events replayed. A
        replay that fails is the answer asked for, a UsageError that says why."""
        if not (path or execution_id):
            raise UsageError("replay needs a run id or --file HISTORY.json")
        name = Path(path).stem if path else str(execution_id)
        try:
            return name, await (self.replay_file(path) if path else self.replay(name))
        except UsageError:  # the file is not a history
            raise
        except Exception as exc:
            raise UsageError(f"replay of {name} failed: {exc}") from None

    async def replay_file(self, path: str | Path) -> int:
        """Replay a history exported with `temporal workflow show -o json`; the file's stem
        is taken as the run's id. Needs no connection."""
        try:
            history = WorkflowHistory.from_json(Path(path).stem, Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read a history: {exc}") from None
        return await self.replay(history)

    def ui_link(self, execution_id: str) -> str:
        settings = self.settings
        return f"{settings.ui_url}/namespaces/{settings.namespace}/workflows/{execution_id}"

    async def state(self, execution_id: str) -> RunState:
        """Temporal's state of the run (the latest of its chain); RunNotFound if none."""
        with self._errors(execution_id):
            description = await self.temporal.get_workflow_handle(execution_id).describe()
        return state_of(description.status)

    # helpers

    def _errors(self, execution_id: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Temporal's errors inside leave as ours (engine/temporal_errors.py)."""
        settings = self.settings
        return temporal_errors(Where(settings.address, settings.namespace, execution_id))

    async def ensure_worker(self) -> None:
        """A local stack's worker for the runs, unless this client was made not to start one."""
        if self._start_worker:
            await ensure_local_worker(self.temporal, self.settings, self._note)

    async def _handle(self, execution_id: str) -> WorkflowHandle[Any, RunResult]:
        handle = self.temporal.get_workflow_handle(execution_id, result_type=RunResult)
        with self._errors(execution_id):
            await handle.describe()
        return handle

    def _loaded(self, definition: LoadedDefinition | Definition | str | Path) -> LoadedDefinition:
        if isinstance(definition, LoadedDefinition):
            return definition
        if isinstance(definition, Definition):
            return LoadedDefinition(definition=definition, children={})
        return self.load_file(definition)

    def _mocked(self, loaded: LoadedDefinition, offline: bool) -> builtins.list[str]:
        """Providers whose calls go to the offline mock. Keys belong to the worker: against
        a server this machine did not start, only `offline` sends calls to the mock."""
        providers = sorted({route(name).provider for name in called_models(loaded)} - {MOCK})
        if offline:
            if providers:
                self._note("--offline: every model call goes to the offline mock provider")
            return providers
        if not is_local_stack(self.settings):
            return []
        missing = [p for p in providers if not is_configured(p, self.settings.endpoints.get(p))]
        for provider in missing:
            hint = provider_spec(provider).setup_hint()
            self._note(
                f"no key configured for provider {provider}: its calls go to the offline mock "
                f"provider (replies are labelled). To call it, set {hint}."
            )
        return missing


async def _status_query(
    handle: WorkflowHandle[Any, Any], where: Where, poller_wait: float
) -> RunStatus:
    """The run's `status` query. A worker that has just started may not have polled yet:
    with `poller_wait`, "no poller seen" is asked again for that many seconds."""
    deadline = asyncio.get_running_loop().time() + poller_wait
    while True:
        try:
            with temporal_errors(where):
                status: RunStatus = await handle.query(
                    "status", result_type=RunStatus, rpc_timeout=QUERY_TIMEOUT
                )
                return status
        except (StatusUnavailable, TemporalError) as exc:
            if "no poller seen" in str(exc) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.25)
                continue
            if isinstance(exc, StatusUnavailable):
                raise
            raise StatusUnavailable(
                f"run {where.execution_id} did not answer the status query: {exc.detail}"
            ) from None


def _read_texts(definition: Definition | None, texts: Mapping[str, str]) -> dict[str, Any]:
    """Variables given as text, typed by the definition as `run` types them (a run the worker
    started from a file name carries none: then read as for a variable of no declared type)."""
    if definition is None:
        return {name: read_text_value(text) for name, text in texts.items()}
    return typed_variables(definition, dict(texts))


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
