"""Running the example definitions offline, shared by their tests and the history recorder."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from activities.actions import builtin_actions
from activities.database import DatabaseActions
from activities.definitions import load_bundle
from activities.email import EmailActions, SmtpSettings
from activities.files import FileActions
from activities.http import AddressGuard, HttpActions
from activities.registry import load_custom_actions, params_models
from workflows.actions import ACTION_PARAMS
from workflows.contracts import RunInput, RunResult
from workflows.definition import WaitForSignalStep
from workflows.interpreter import YamlWorkflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    p for p in (ROOT / "definitions").glob("*.yaml") if not p.name.endswith(".test.yaml")
)
SIGNAL_PAYLOADS: dict[str, Any] = {"approve": {"approved": True, "comment": "ship it"}}

SMALL_HISTORIES = [
    *("--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=100"),
    *("--dynamic-config-value", "limit.historyCount.error=400"),
]
"""A dev server that suggests continuing as new after 100 events and refuses 400."""
ITEMS = 150
# About 1,000 events: on that server it must continue as new several times to finish.
LONG = f"""
workflow:
  name: Long
  defaults: {{model: gpt-4o-mini}}
  steps:
    - {{id: intro, type: llm_call, prompt: "intro", outputs: [intro]}}
    - id: each
      type: llm_call
      for_each: "{{{{ range({ITEMS}) | list }}}}"
      concurrency: 4
      prompt: "item {{{{ item }}}}"
      outputs: [answer]
    - {{id: approve, type: wait_for_signal, signal: approve, outputs: [{{name: ok}}]}}
    - {{id: outro, type: llm_call, prompt: "outro after {{{{ answer | length }}}} and {{{{ ok }}}}",
       outputs: [outro]}}
  outputs:
    started: "{{{{ run.started_at }}}}"
"""


EXAMPLE_ACTIONS = load_custom_actions(["activities.example_actions"])
"""The custom actions the examples use (ACTION_MODULES=activities.example_actions)."""


def offline_actions(output_dir: Path) -> dict:
    builtins = builtin_actions(
        HttpActions(httpx.AsyncClient(), AddressGuard(), 1_000_000),
        FileActions(output_dir),
        EmailActions(SmtpSettings()),
        DatabaseActions({"default": f"sqlite:///{output_dir}/workflows.db"}),
    )
    return {**builtins, **EXAMPLE_ACTIONS}


async def run_example(
    client: Client, task_queue: str, path: Path, workflow_id: str | None = None
) -> tuple[WorkflowHandle[Any, RunResult], RunResult]:
    """Start an example with every model call on the mock, answer its signals, wait."""
    actions = {**ACTION_PARAMS, **params_models(EXAMPLE_ACTIONS)}
    loaded = load_bundle(path, f"definitions/{path.name}", actions)
    handle = await client.start_workflow(
        YamlWorkflow.run,
        RunInput(
            definition=loaded.definition,
            children=loaded.children,
            mock_providers=["openai", "anthropic"],
        ),
        id=workflow_id or f"example-{path.stem}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    for step in loaded.definition.workflow.steps:
        if isinstance(step, WaitForSignalStep):
            await handle.signal(step.signal, SIGNAL_PAYLOADS[step.signal])
    return handle, await handle.result()
