"""How a `set` step runs: its values rendered inside the workflow, no activity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.step_results import Once, render_or_fail
    from workflows.step_types.set_values import SetStep

if TYPE_CHECKING:  # annotations only: steps.py dispatches to this module
    from workflows.steps import StepRunner


async def run(step: SetStep, runner: StepRunner, context: dict[str, Any], key: str) -> Once:
    await runner.pace()
    return Once(
        {
            name: render_or_fail(value, context, f"{key}.values.{name}")
            for name, value in step.values.items()
        }
    )
