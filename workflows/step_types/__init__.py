"""The step types, one module each: its model (the YAML's shape), its checks and what the
scheduler needs to know of it. How each runs is in the `<module>_run.py` beside it (apart,
because running needs the run's contracts, which hold a whole Definition of these models).

`Step` below is the registry of built-in types: the definition's union, the names validation
offers, the checks and (through workflows/steps.py's RUNNERS) the dispatch all come from it.
To add a step type, write its two modules and name it in `Step` and in RUNNERS; a type
without a runner fails tests/test_step_types.py, not a run (docs/extending.md).
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field

from workflows.step_types.action import ActionStep
from workflows.step_types.child_workflow import WorkflowStep
from workflows.step_types.llm_call import LlmCallStep
from workflows.step_types.registry import StepTypes, type_name
from workflows.step_types.set_values import SetStep
from workflows.step_types.wait_for_signal import WaitForSignalStep

Step = Annotated[
    LlmCallStep | ActionStep | SetStep | WaitForSignalStep | WorkflowStep,
    Field(discriminator="type"),
]
"""A step of any built-in type, told apart by its `type` field (the JSON Schema lists them
in this order)."""

BUILT_IN = StepTypes(get_args(get_args(Step)[0]))
"""The built-in step types, read from `Step`: written once."""

__all__ = [
    "BUILT_IN",
    "ActionStep",
    "LlmCallStep",
    "SetStep",
    "Step",
    "StepTypes",
    "WaitForSignalStep",
    "WorkflowStep",
    "type_name",
]
