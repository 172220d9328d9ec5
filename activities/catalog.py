"""Every activity a worker hosts, wired to its clients: the built-in actions with their HTTP,
file, mail and database clients, the custom ones of ACTION_MODULES, and which activities go
on which task queue. worker.py puts them in workers.

Provider SDKs, httpx and SQLAlchemy are imported where activities are built, not here, so
the starter starts quickly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.load_definition import DefinitionActivities
from activities.mcp_servers import McpServer
from activities.pacing import pace
from activities.pricing import DEFAULT_PRICES, Price
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


def main_queue_activities(
    providers: Mapping[str, Provider],
    definitions_dir: Path,
    actions: Mapping[str, ActionSpec],
    secrets: Mapping[str, str],
    prices: Mapping[str, Price] | None,
    validators: Mapping[str, ValidatorSpec],
    pacer: Pacer | None = None,
    mcp_servers: Mapping[str, McpServer] | None = None,
    input_dir: Path = Path("input"),
) -> list[Callable[..., Any]]:
    """What the workflow's own task queue runs: model calls, definition loading, pacing, the
    actions (and one for names that are not an action) and the validators."""
    from activities.actions import action_activity, unknown_action
    from activities.llm import LlmActivities
    from activities.validators import validator_activity

    prices = DEFAULT_PRICES if prices is None else prices
    llm = LlmActivities(providers, prices=prices, pacer=pacer, input_dir=input_dir)
    definitions = DefinitionActivities(
        definitions_dir, params_models(actions), set(validators), prices
    )
    tools = ToolActivities(actions, mcp_servers or {})
    return [
        llm.llm_call,
        definitions.load_definition,
        pace,
        tools.describe_tools,
        tools.mcp_call,
        *(action_activity(spec, secrets) for spec in actions.values()),
        *(validator_activity(name, spec.run) for name, spec in validators.items()),
        unknown_action,
    ]


def extra_queue_workers(
    client: Client,
    settings: Settings,
    providers: Mapping[str, Provider],
    actions: Mapping[str, ActionSpec],
    pacer: Pacer | None = None,
) -> list[Worker]:
    """Workers for the separate LLM and action task queues, when they are configured (LLM
    calls share `pacer` with the main queue's)."""
    from activities.actions import action_activity, unknown_action
    from activities.llm import LlmActivities

    workers = []
    tools = ToolActivities(actions, settings.mcp_servers)
    if settings.llm_task_queue:
        llm = LlmActivities(
            providers, prices=settings.prices, pacer=pacer, input_dir=settings.input_dir
        )
        workers.append(
            Worker(
                client,
                task_queue=settings.llm_task_queue,
                activities=[llm.llm_call],
                max_heartbeat_throttle_interval=timedelta(seconds=0.5),  # streamed replies
                default_heartbeat_throttle_interval=timedelta(seconds=0.5),
                max_task_queue_activities_per_second=settings.llm_rate_per_second,
                max_concurrent_activities=settings.max_concurrent_activities,
            )
        )
    if settings.action_task_queue:
        workers.append(
            Worker(
                client,
                task_queue=settings.action_task_queue,
                activities=[
                    *(action_activity(spec, settings.secrets) for spec in actions.values()),
                    unknown_action,
                    tools.describe_tools,
                    tools.mcp_call,
                ],
                max_concurrent_activities=settings.max_concurrent_activities,
            )
        )
    return workers
