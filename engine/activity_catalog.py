"""Every activity a worker hosts, wired to its clients: the built-in actions with their HTTP,
file, mail and database clients, the custom ones of ACTION_MODULES, and which activities go
on which task queue. engine/plugin.py hands them to workers.

Provider SDKs, httpx and SQLAlchemy are imported where activities are built, not here, so
the starter starts quickly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from activities.load_definition import DefinitionActivities
from activities.pacing import pace
from activities.rate_limits import Pacer
from activities.registry import ActionSpec, ValidatorSpec, load_custom_actions, params_models
from activities.tools import ToolActivities

if TYPE_CHECKING:
    from activities.providers import Provider
    from engine.settings import Settings


def build_actions(settings: Settings) -> dict[str, ActionSpec]:
    """Built-in actions wired to their clients, plus the custom ones of ACTION_MODULES."""
    import httpx

    from activities.actions import builtin_actions
    from activities.database import DatabaseActions
    from activities.email import EmailActions
    from activities.files import FileActions
    from activities.http import AddressGuard, HttpActions

    http = HttpActions(
        httpx.AsyncClient(),
        AddressGuard.from_list(settings.http_allowlist),
        settings.http_max_body_bytes,
    )
    builtins = builtin_actions(
        http,
        FileActions(settings.output_dir),
        EmailActions(settings.smtp),
        DatabaseActions(settings.databases),
    )
    return {**builtins, **load_custom_actions(settings.action_modules)}


def pacer_for(settings: Settings) -> Pacer:
    """The worker's pacing gates: configured limits, and what earlier replies told of the
    others (remembered in settings.llm_pacing_memory)."""
    from activities.pacing_memory import PacingMemory, endpoint_key

    return Pacer(
        settings.llm_rate_limits,
        enabled=settings.llm_pacing,
        memory=PacingMemory(settings.llm_pacing_memory),
        endpoints={name: endpoint_key(endpoint) for name, endpoint in settings.endpoints.items()},
    )


@dataclass(frozen=True)
class QueueActivities:
    """What each kind of task queue runs. The separate LLM and action queues exist only when
    settings name them; the workflow's own queue runs everything either way, so a run that
    names no other queue needs no other worker."""

    main: list[Callable[..., Any]]
    """Model calls, definition loading, pacing, tools, the actions (and one for names that
    are not an action) and the validators."""
    llm: list[Callable[..., Any]]
    actions: list[Callable[..., Any]]


def queue_activities(
    settings: Settings,
    providers: Mapping[str, Provider],
    actions: Mapping[str, ActionSpec],
    validators: Mapping[str, ValidatorSpec],
    pacer: Pacer,
) -> QueueActivities:
    """Each activity built once; the queues share them, so LLM calls share one pacer."""
    from activities.actions import action_activity, unknown_action
    from activities.batches import BatchActivities
    from activities.llm import LlmActivities
    from activities.providers.clients import build_batchers
    from activities.validators import validator_activity

    llm = LlmActivities(
        providers, prices=settings.prices, pacer=pacer, input_dir=settings.input_dir
    )
    batches = BatchActivities(build_batchers(providers), settings.prices)
    batch_activities: list[Callable[..., Any]] = [
        batches.submit,
        batches.poll,
        batches.results,
        batches.cancel,
    ]
    definitions = DefinitionActivities(
        settings.definitions_dir, params_models(actions), set(validators), settings.prices
    )
    tools = ToolActivities(actions, settings.mcp_servers)
    action_activities: list[Callable[..., Any]] = [
        *(action_activity(spec, settings.secrets) for spec in actions.values()),
        unknown_action,
        tools.describe_tools,
        tools.mcp_call,
    ]
    return QueueActivities(
        main=[
            llm.llm_call,
            *batch_activities,
            definitions.load_definition,
            pace,
            *action_activities,
            *(validator_activity(name, spec.run) for name, spec in validators.items()),
        ],
        llm=[llm.llm_call],
        actions=action_activities,
    )
