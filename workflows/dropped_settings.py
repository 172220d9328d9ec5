"""Warnings, not errors: settings of a valid definition that a model call will not send,
because the model's family refuses them (the provider table, workflows/providers.py). The
run still works; the user learns why the setting had no effect before paying for it."""

from __future__ import annotations

from workflows.definition import Definition, LlmCallStep
from workflows.errors import Problem
from workflows.providers import family_of
from workflows.routing import route
from workflows.source import Path, Source

WARNING = "warning: "
"""Every warning's message starts so: `file:line:col: warning: ...`, as compilers write."""


def dropped_settings(source: Source, definition: Definition) -> list[Problem]:
    """A `temperature` set for a step whose model takes none: located at the step's own
    temperature, else at its own model, else (both from `defaults`) once at the default.
    Fallback models are sent what their family takes, unwarned: they answer only when the
    step's model failed."""
    spec = definition.workflow
    defaults = spec.defaults
    warnings: dict[Path, Problem] = {}
    for index, step in enumerate(spec.steps):
        if not isinstance(step, LlmCallStep):
            continue
        temperature = step.temperature if step.temperature is not None else defaults.temperature
        name = step.model or defaults.model
        if temperature is None or name is None or _takes_temperature(name):
            continue
        path: Path = ("workflow", "defaults", "temperature")
        if step.temperature is not None:
            path = ("workflow", "steps", index, "temperature")
        elif step.model is not None:
            path = ("workflow", "steps", index, "model")
        given = f"temperature {temperature:g}"
        given += "" if step.temperature is not None else " (from defaults)"
        target = route(name)
        message = (
            f"{WARNING}{given} is not sent to {name}: {target.provider} "
            f"{family_of(target.provider, target.model).label} take no temperature "
            "(remove it, or choose another model)"
        )
        warnings.setdefault(path, source.problem(path, message))
    return list(warnings.values())


def _takes_temperature(name: str) -> bool:
    try:
        target = route(name)
    except ValueError:
        return True  # reported as an error already
    return family_of(target.provider, target.model).temperature
