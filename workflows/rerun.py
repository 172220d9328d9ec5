"""The rerun rule: what a next run of the same input takes as it is, instead of calling
again. Continue-as-new and `rerun` (the CLI's `resume`) both use it, so they agree on what
is reused."""

from __future__ import annotations

from collections.abc import Container

from pydantic import BaseModel

from workflows.contracts import ItemResult, RunInput, RunStatus, StepResult, Usage
from workflows.graph import dependencies, downstream, output_owners


def unfinished_items(
    carried: dict[str, dict[int, ItemResult]],
    live: dict[str, dict[int, ItemResult]],
    finished_steps: Container[str],
) -> dict[str, dict[int, ItemResult]]:
    """The for_each items a next run can reuse: those carried into this run and those it
    finished itself (its status), for steps that are not themselves reused whole."""
    return {
        step_id: items
        for step_id, items in {**carried, **live}.items()
        if step_id not in finished_steps
    }


class RerunPlan(BaseModel):
    """What a rerun reuses, and what that saves."""

    reuse: dict[str, StepResult]
    reuse_items: dict[str, dict[int, ItemResult]]
    saved: Usage

    @property
    def item_count(self) -> int:
        return sum(len(items) for items in self.reuse_items.values())


def rerun_plan(previous: RunInput, status: RunStatus, from_step: str | None = None) -> RerunPlan:
    """Reuse every completed step and every finished item of a step that did not finish
    (where the item is still the same, decided when the next run gets there); `from_step`
    and every step that waits for it run again. Raises ValueError for an unknown step."""
    reuse = {step_id: status.steps[step_id] for step_id in status.finished_steps}
    items = unfinished_items(previous.reuse_items, status.items, reuse)
    if from_step is not None:
        if previous.definition is None:
            raise ValueError("rerunning from a step needs a run started with a parsed definition")
        raw = [step.model_dump(by_alias=True) for step in previous.definition.workflow.steps]
        graph = dependencies(raw, output_owners(raw))
        if from_step not in graph:
            raise ValueError(f"no step {from_step!r} in the run's definition")
        for step_id in downstream(graph, from_step):
            reuse.pop(step_id, None)
            items.pop(step_id, None)
    saved = sum((step.usage for step in reuse.values()), Usage())
    saved = sum((item.usage for done in items.values() for item in done.values()), saved)
    return RerunPlan(reuse=reuse, reuse_items=items, saved=saved)
