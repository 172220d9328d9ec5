"""Schedules: runs of a definition on a cron or an interval, as Temporal Schedules.

No scheduler of our own: each schedule is Temporal's, and its action holds the run's whole
input (the definition, validated when the schedule is created, and its variables), so every
run starts from what was validated, whatever later happens to the file. Safe defaults: a
run that is due while the last one still runs is skipped, and after downtime only what fell
due in the last minute is caught up (no pile-up of missed runs).
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from engine.settings import Settings
from engine.temporal_errors import Where, schedule_errors
from workflows.contracts import LoadedDefinition, RunInput
from workflows.definition import Definition
from workflows.durations import parse_duration
from workflows.errors import UsageError
from workflows.interpreter import YamlWorkflow


class Starter(Protocol):
    """What schedules need of the client API (engine/client.py's EngineClient): its
    connection and settings, the checked input of a run, and a worker for the runs."""

    temporal: Client
    settings: Settings

    def run_input(
        self,
        definition: LoadedDefinition | Definition | str | Path,
        variables: dict[str, Any] | None = None,
        *,
        offline: bool = False,
    ) -> RunInput: ...

    async def ensure_worker(self) -> None: ...


OVERLAP_POLICIES: dict[str, ScheduleOverlapPolicy] = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer-one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer-all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel-other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate-other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow-all": ScheduleOverlapPolicy.ALLOW_ALL,
}
"""What a run that falls due while the schedule's last run still runs does (default skip)."""
DEFAULT_OVERLAP = "skip"
DEFAULT_CATCHUP_WINDOW = "1m"
"""How late a run that fell due while Temporal was down may still start."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
MEMO_WORKFLOW = "workflow_name"
MEMO_WHEN = "when"


class ScheduledRun(BaseModel):
    execution_id: str
    scheduled_at: datetime
    started_at: datetime


class ScheduleView(BaseModel):
    """A schedule as `list` and `describe` show it."""

    name: str
    workflow_name: str | None
    when: str | None
    """`cron 0 9 * * 1-5` or `every 30s`, as it was created."""
    paused: bool
    note: str | None = None
    next_runs: list[datetime] = []
    recent_runs: list[ScheduledRun] = []
    """Up to 10, oldest first."""
    running: list[str] = []
    overlap: str | None = None
    catchup_window: str | None = None
    runs_started: int | None = None


class Schedules:
    """The client API's schedules: create, list, describe, pause, unpause, trigger, delete."""

    def __init__(self, engine: Starter) -> None:
        self.engine = engine

    async def create(
        self,
        name: str,
        definition: LoadedDefinition | Definition | str | Path,
        variables: dict[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: str | None = None,
        overlap: str = DEFAULT_OVERLAP,
        catchup_window: str = DEFAULT_CATCHUP_WINDOW,
        offline: bool = False,
        paused: bool = False,
    ) -> ScheduleView:
        """Validate the definition and variables, then create the schedule (nothing is
        created when either is wrong). Runs get ids `NAME-<time it fell due>`."""
        check_name(name)
        spec, when = _spec(cron, every)
        policy = _policy(overlap, catchup_window)
        run_input = self.engine.run_input(definition, variables, offline=offline)
        assert run_input.definition is not None
        action = ScheduleActionStartWorkflow(
            YamlWorkflow.run,
            run_input,
            id=name,
            task_queue=self.engine.settings.task_queue,
        )
        memo = {MEMO_WORKFLOW: run_input.definition.workflow.name, MEMO_WHEN: when}
        schedule = Schedule(
            action=action,
            spec=spec,
            policy=policy,
            state=ScheduleState(paused=paused, note="created paused" if paused else None),
        )
        with self._errors(name, cron=cron):
            await self.engine.temporal.create_schedule(name, schedule, memo=memo)
        await self.engine.ensure_worker()  # a local stack's worker for its runs, as `start`
        return await self.describe(name)

    async def list(self) -> list[ScheduleView]:
        """The namespace's schedules of YAML workflows, by name."""
        found = []
        with self._errors():
            async for listed in await self.engine.temporal.list_schedules():
                if listed.schedule is None:
                    continue
                if getattr(listed.schedule.action, "workflow", None) != YamlWorkflow.__name__:
                    continue
                memo = await listed.memo()
                info = listed.info
                found.append(
                    ScheduleView(
                        name=listed.id,
                        workflow_name=memo.get(MEMO_WORKFLOW),
                        when=memo.get(MEMO_WHEN),
                        paused=listed.schedule.state.paused,
                        note=listed.schedule.state.note or None,
                        next_runs=list(info.next_action_times[:1]) if info else [],
                        recent_runs=_runs(info.recent_actions) if info else [],
                    )
                )
        return sorted(found, key=lambda view: view.name)

    async def describe(self, name: str) -> ScheduleView:
        """Next and recent runs, state and policies."""
        with self._errors(name):
            described = await self.engine.temporal.get_schedule_handle(name).describe()
        memo = await described.memo()
        schedule, info = described.schedule, described.info
        policy = schedule.policy
        return ScheduleView(
            name=name,
            workflow_name=memo.get(MEMO_WORKFLOW),
            when=memo.get(MEMO_WHEN),
            paused=schedule.state.paused,
            note=schedule.state.note or None,
            next_runs=list(info.next_action_times[:5]),
            recent_runs=_runs(info.recent_actions),
            running=[
                run.workflow_id
                for run in info.running_actions
                if isinstance(run, ScheduleActionExecutionStartWorkflow)
            ],
            overlap=_overlap_name(policy.overlap),
            catchup_window=_seconds(policy.catchup_window),
            runs_started=info.num_actions,
        )

    async def pause(self, name: str, note: str | None = None) -> ScheduleView:
        with self._errors(name):
            await self.engine.temporal.get_schedule_handle(name).pause(note=note or "paused")
        return await self.describe(name)

    async def unpause(self, name: str, note: str | None = None) -> ScheduleView:
        with self._errors(name):
            await self.engine.temporal.get_schedule_handle(name).unpause(note=note or "unpaused")
        return await self.describe(name)

    async def trigger(self, name: str) -> ScheduleView:
        """Start a run now (also when paused), under the schedule's overlap policy."""
        with self._errors(name):
            await self.engine.temporal.get_schedule_handle(name).trigger()
        return await self.describe(name)

    async def delete(self, name: str) -> None:
        """Delete the schedule; runs it started go on."""
        with self._errors(name):
            await self.engine.temporal.get_schedule_handle(name).delete()

    def _errors(
        self, name: str | None = None, cron: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Temporal's words for a missing schedule or a cron it cannot read, in ours."""
        settings = self.engine.settings
        return schedule_errors(Where(settings.address, settings.namespace), name, cron)


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"schedule name {name!r}: use letters, digits, '.', '_' and '-' (at most 200, "
            "starting with a letter or digit)"
        )


def _spec(cron: str | None, every: str | None) -> tuple[ScheduleSpec, str]:
    if (cron is None) == (every is None):
        raise UsageError("give a schedule a cron expression or an interval (every), not both")
    if cron is not None:
        if not cron.strip():
            raise UsageError("cron '': give five fields, e.g. \"0 9 * * 1-5\"")
        return ScheduleSpec(cron_expressions=[cron.strip()]), f"cron {cron.strip()}"
    assert every is not None
    interval = _duration(every, "every")
    if interval < timedelta(seconds=1):
        raise UsageError(f"every {every!r}: a schedule runs at most once a second")
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]), f"every {every}"


def _policy(overlap: str, catchup_window: str) -> SchedulePolicy:
    if overlap not in OVERLAP_POLICIES:
        raise UsageError(f"overlap {overlap!r}: use one of {', '.join(OVERLAP_POLICIES)}")
    window = _duration(catchup_window, "catchup window")
    if window < timedelta(seconds=10):
        raise UsageError(f"catchup window {catchup_window!r}: Temporal's least is 10s")
    return SchedulePolicy(overlap=OVERLAP_POLICIES[overlap], catchup_window=window)


def _duration(text: str, what: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None


def _runs(results: Any) -> list[ScheduledRun]:
    return [
        ScheduledRun(
            execution_id=result.action.workflow_id,
            scheduled_at=result.scheduled_at,
            started_at=result.started_at,
        )
        for result in results
        if isinstance(result, ScheduleActionResult)
        and isinstance(result.action, ScheduleActionExecutionStartWorkflow)
    ]


def _overlap_name(policy: ScheduleOverlapPolicy) -> str:
    names = {value: key for key, value in OVERLAP_POLICIES.items()}
    return names.get(policy, "skip")  # unspecified is Temporal's skip


def _seconds(window: timedelta | None) -> str:
    if window is None:
        return "1y"  # Temporal's default
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
