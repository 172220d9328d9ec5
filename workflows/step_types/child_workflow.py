"""The `workflow` step type: another definition run as a child run; its outputs are the
step's outputs. How it runs: child_workflow_run.py."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from workflows.definition_parts import MAX_DEPTH_LIMIT, StepFields


class WorkflowStep(StepFields):
    """Runs another definition as a child run; its outputs are the step's outputs."""

    type: Literal["workflow"] = Field(description="workflow: run another definition.")
    definition: str = Field(description="Another definition file, relative to this one.")
    variables: dict[str, Any] = Field(
        default={}, description="The child run's variables (templates)."
    )
    max_depth: Annotated[int, Field(ge=1, le=MAX_DEPTH_LIMIT)] | None = Field(
        default=None,
        description="How deep child runs may nest below the top-level run (its children are "
        "1 deep); past it the step fails without starting its child. Default: 4 (at most "
        "32); a parent's lower limit holds in its children.",
    )

    spends: ClassVar[bool] = True

    def may_wait_long(self) -> bool:
        return True
