"""The `wait_for_signal` step type: waits for a named signal; its JSON payload becomes the
step's outputs. How it runs: wait_for_signal_run.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from workflows.definition_parts import NAME, StepFields


class WaitForSignalStep(StepFields):
    """Waits for a signal; its JSON payload becomes the step's outputs."""

    type: Literal["wait_for_signal"] = Field(
        description="wait_for_signal: wait for a named signal."
    )
    signal: Annotated[str, Field(pattern=NAME)] = Field(
        description="The signal's name (letters, digits, '_' and '-'), e.g. approve."
    )

    def may_wait_long(self) -> bool:
        return True
