"""What the command line prints for a run: its result, its status, a list of runs, a
cancel's and a rerun's outcome, as text lines (the `--json` forms are the models' own).
starter.py decides where each goes (stdout, or stderr for notes); the words live here.
Light on purpose: models are imported for type checking only, so `--help` stays fast."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.progress import budget_text, progress_line

if TYPE_CHECKING:
    from pydantic import BaseModel

    from engine.client_models import Execution, ExecutionStatus, Rerun
    from workflows.contracts import BudgetStatus, RunResult


def as_json(value: BaseModel | Sequence[BaseModel]) -> str:
    if isinstance(value, Sequence):
        return json.dumps([item.model_dump(mode="json") for item in value], indent=2)
    return json.dumps(value.model_dump(mode="json"), indent=2)


def shown(value: Any) -> str:
    """A value as a line shows it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def result_lines(result: RunResult) -> list[str]:
    """The run's outputs, `name: value`; a run without declared outputs shows each step's."""
    outputs = result.outputs or {
        f"{step_id}.{name}": value
        for step_id, step in result.steps.items()
        for name, value in (step.outputs or {}).items()
    }
    return [f"{name}: {shown(value)}" for name, value in outputs.items()]


def usage_note(result: RunResult) -> str:
    usage = result.usage
    cached = f" ({usage.cache_read_tokens} read from cache)" if usage.cache_read_tokens else ""
    saved = f", saved ${usage.saved_usd:.6f}" if usage.saved_usd > 0 else ""
    return (
        f"completed {len(result.steps)} step(s), {usage.input_tokens} input{cached} and "
        f"{usage.output_tokens} output tokens, estimated ${usage.cost_usd:.6f}{saved}"
    )


def status_lines(execution_id: str, status: ExecutionStatus) -> list[str]:
    lines = [f"{execution_id} ({status.workflow_name}): {status.execution_status}"]
    lines.append(progress_line(status))
    for step_id, step in status.steps.items():
        lines.append(
            f"  {step_id}: {step.status}, {step.attempts} attempt(s), {step.duration_ms} ms"
            + (f" — {step.error}" if step.error else "")
        )
    lines += [f"  {step_id}: {text}" for step_id, text in status.batches.items()]
    lines += [f"  {name} = {shown(value)}" for name, value in status.outputs.items()]
    return lines


def run_line(run: Execution) -> str:
    """One run of `list`."""
    steps = run.steps_done if run.steps_done is not None else "-"
    return (
        f"{run.execution_id}  {run.workflow_name or '-'}  {run.status}  "
        f"steps done: {steps}  {run.started_at.isoformat()}"
    )


def cancelled_line(execution_id: str, status: ExecutionStatus) -> str:
    return (
        f"{execution_id}: {status.execution_status}; steps finished before: "
        f"{', '.join(status.finished_steps) or 'none'}"
    )


def rerun_note(execution_id: str, rerun: Rerun) -> str:
    """What a rerun took from the old run, and what that saved."""
    saved = rerun.saved
    return (
        f"resumed {execution_id} as {rerun.execution_id}: reused "
        f"{', '.join(rerun.reused_steps) or 'no steps'}"
        + (f" and {rerun.reused_items} finished for_each item(s)" if rerun.reused_items else "")
        + f" ({saved.input_tokens} input and {saved.output_tokens} output tokens not spent again)"
    )


def budget_line(execution_id: str, budget: BudgetStatus) -> str:
    return f"{execution_id}: {budget.scope} budget now {budget_text(budget)}"
