"""The `set` step type: values computed from templates inside the workflow, with no
activity. How it runs: set_values_run.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from workflows.definition_parts import Identifier, StepFields

if TYPE_CHECKING:  # annotations only
    from workflows.source import Path


class SetStep(StepFields):
    """Computes values from templates inside the workflow, with no activity."""

    type: Literal["set"] = Field(description="set: compute values from templates.")
    values: dict[Identifier, Any] = Field(
        description="name: template pairs; each key becomes an output of that name."
    )

    def output_names(self) -> list[str]:
        return list(self.values)

    @classmethod
    def raw_output_paths(cls, path: Path, raw: dict[str, Any]) -> list[tuple[Path, str]]:
        """Each key of `values` is an output of that name."""
        values = raw.get("values")
        if isinstance(values, dict):
            return [((*path, "values", name), str(name)) for name in values]
        return super().raw_output_paths(path, raw)
