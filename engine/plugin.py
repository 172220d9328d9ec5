"""The engine as one Temporal plugin, so any Temporal worker can run YAML workflows.

Given to `Client.connect(..., plugins=[plugin])`, it sets the client's data converter
(pydantic, payload size checks, the PAYLOAD_KEY codec, External Storage), and every `Worker`
built from that client gets the rest: YamlWorkflow, the activities its task queue runs,
the workflow runner, the failure types and the heartbeat throttle that streaming needs.
A `Replayer` given the plugin replays exactly as the worker runs. docs/extending.md shows it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import UnsandboxedWorkflowRunner, WorkerConfig, WorkflowRunner

from engine.activity_catalog import (
    QueueActivities,
    build_actions,
    pacer_for,
    queue_activities,
)
from engine.settings import Settings
from workflows.errors import WorkflowError
from workflows.interpreter import YamlWorkflow
from workflows.payloads import BoundedPayloadConverter

if TYPE_CHECKING:
    from activities.providers import Provider
    from activities.rate_limits import Pacer
    from activities.registry import ActionSpec, ValidatorSpec

PLUGIN_NAME = "llm-workflows"
HEARTBEAT_THROTTLE = timedelta(seconds=0.5)
"""Streamed replies travel in heartbeats (activities/llm.py): they are sent this often."""


def workflow_runner() -> WorkflowRunner:
    """How workflow code runs; shared by the worker and the Replayer so replays match runs.

    Without Temporal's sandbox: YamlWorkflow is the only workflow and users never write
    workflow code, while the sandbox re-imported interpreter.py for every run and proxied
    every payload it visited, about a fifth of the worker's CPU per short run
    (bench/RESULTS.md). What it guarded is checked statically instead: everything under
    workflows/ imports only deterministic modules (tests/test_workflow_purity.py) and replay
    tests run every stored history.
    """
    return UnsandboxedWorkflowRunner()


@dataclass(frozen=True)
class Wiring:
    """What the plugin's workers run with, resolved from settings where not given."""

    providers: Mapping[str, Provider]
    actions: Mapping[str, ActionSpec]
    validators: Mapping[str, ValidatorSpec]
    queues: QueueActivities


class EnginePlugin(SimplePlugin):
    """Runs YAML workflow definitions on any Temporal worker.

    `settings` default to the environment (`Settings.from_env()`, as worker.py reads them).
    Each keyword replaces what the settings would give: `providers` (default: one client per
    configured endpoint, plus `mock`), `actions` (the built-in ones and ACTION_MODULES'),
    `validators` (ACTION_MODULES'), `pacer` (LLM_RATE_LIMITS, LLM_PACING, its memory).
    `workflow` is YamlWorkflow or a subclass with step types of its own (docs/extending.md).
    They are built when the first worker is, so a client or Replayer never builds them.

    A worker on `settings.llm_task_queue` gets only the LLM call, one on
    `settings.action_task_queue` only the actions; on any other queue a worker gets the
    workflow and every activity.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        providers: Mapping[str, Provider] | None = None,
        actions: Mapping[str, ActionSpec] | None = None,
        validators: Mapping[str, ValidatorSpec] | None = None,
        pacer: Pacer | None = None,
        workflow: type[YamlWorkflow] = YamlWorkflow,
    ) -> None:
        self.settings = Settings.from_env(os.environ) if settings is None else settings
        self._given = (providers, actions, validators, pacer)
        super().__init__(
            PLUGIN_NAME,
            data_converter=self._converter,
            workflows=[workflow],
            workflow_runner=workflow_runner(),
            # A broken definition fails its run instead of retrying the workflow task forever.
            workflow_failure_exception_types=[WorkflowError],
        )

    def _converter(self, _existing: DataConverter | None) -> DataConverter:
        return self.settings.data_converter

    @cached_property
    def wiring(self) -> Wiring:
        """Providers, actions, validators and each queue's activities, built once."""
        from activities.llm import build_providers
        from activities.registry import load_custom_validators

        providers, actions, validators, pacer = self._given
        settings = self.settings
        providers = build_providers(settings.endpoints) if providers is None else providers
        actions = build_actions(settings) if actions is None else actions
        if validators is None:
            validators = load_custom_validators(settings.action_modules)
        pacer = pacer_for(settings) if pacer is None else pacer
        queues = queue_activities(settings, providers, actions, validators, pacer)
        return Wiring(providers, actions, validators, queues)

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        _check_converter(config["client"].data_converter)
        settings, queues, queue = self.settings, self.wiring.queues, config["task_queue"]
        side = [
            *(queues.llm if queue == settings.llm_task_queue else []),
            *(queues.actions if queue == settings.action_task_queue else []),
        ]
        if queue == settings.task_queue or not side:
            config = super().configure_worker(config)
            config["activities"] = [*config.get("activities", []), *queues.main]
        else:
            config["activities"] = [*config.get("activities", []), *side]
            if queue == settings.llm_task_queue and settings.llm_rate_per_second is not None:
                config["max_task_queue_activities_per_second"] = settings.llm_rate_per_second
        config["max_heartbeat_throttle_interval"] = _at_most(
            config.get("max_heartbeat_throttle_interval"), HEARTBEAT_THROTTLE
        )
        config["default_heartbeat_throttle_interval"] = _at_most(
            config.get("default_heartbeat_throttle_interval"), HEARTBEAT_THROTTLE
        )
        return config


def _at_most(value: timedelta | None, bound: timedelta) -> timedelta:
    return bound if value is None else min(value, bound)


def _check_converter(converter: DataConverter) -> None:
    """Runs' inputs and results are pydantic models: a client connected without the plugin
    (and without a converter that carries them) would fail every run on its first task."""
    if not issubclass(
        converter.payload_converter_class, (BoundedPayloadConverter, PydanticPayloadConverter)
    ):
        raise ValueError(
            "EnginePlugin: connect the worker's client with the plugin, "
            "Client.connect(address, plugins=[plugin]), so it carries the engine's payloads"
        )
