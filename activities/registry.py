"""What an action is (name, params model, function) and how custom ones are found: plain
functions marked with ``@action(...)`` in the modules named by ``ACTION_MODULES``."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from workflows.actions import ACTION_PARAMS
from workflows.contracts import ActionInput

ActionFunction = Callable[[Any, ActionInput], Awaitable[Any] | Any]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    params: type[BaseModel]
    run: ActionFunction


def action(name: str, params: type[BaseModel]) -> Callable[[ActionFunction], ActionFunction]:
    """Mark a function ``(params, request) -> value`` (sync or async) as a custom action."""

    def mark(function: ActionFunction) -> ActionFunction:
        function.__action__ = ActionSpec(name, params, function)  # type: ignore[attr-defined]
        return function

    return mark


def load_custom_actions(module_names: Iterable[str]) -> dict[str, ActionSpec]:
    """Every function marked with @action in the named modules."""
    found: dict[str, ActionSpec] = {}
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            spec = getattr(value, "__action__", None)
            if isinstance(spec, ActionSpec):
                found[spec.name] = spec
    return found


def params_models(actions: Mapping[str, ActionSpec]) -> dict[str, type[BaseModel]]:
    """What validation needs to know of a worker's actions: built-ins (sleep too) and custom."""
    return {**ACTION_PARAMS, **{name: spec.params for name, spec in actions.items()}}
