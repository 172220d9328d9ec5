"""What an action is (name, params model, function) and a validator (name, function), and how
custom ones are found: plain functions marked with ``@action(...)`` or ``@validator(...)`` in
the modules named by ``ACTION_MODULES``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel

from workflows.actions import ACTION_PARAMS
from workflows.contracts import ActionInput

ActionFunction = Callable[[Any, ActionInput], Awaitable[Any] | Any]
ValidatorFunction = Callable[[dict[str, Any]], Awaitable[Any] | Any]
"""``(outputs) -> (is_valid, errors)``, sync or async; errors is a list of strings."""
ACTION_MARK = "__action__"
VALIDATOR_MARK = "__validator__"
"""The attributes that ``@action`` and ``@validator`` set on a function, for the module scan."""


@dataclass(frozen=True)
class ActionSpec:
    name: str
    params: type[BaseModel]
    run: ActionFunction


def action(name: str, params: type[BaseModel]) -> Callable[[ActionFunction], ActionFunction]:
    """Mark a function ``(params, request) -> value`` (sync or async) as a custom action."""

    def mark(function: ActionFunction) -> ActionFunction:
        setattr(function, ACTION_MARK, ActionSpec(name, params, function))
        return function

    return mark


EVALUATOR_PREFIX = "evaluate_"
"""A Python evaluator NAME runs on the worker as the action `evaluate_NAME`."""
EvaluatorFunction = Callable[[dict[str, Any], dict[str, Any] | None], Any]
"""``(row, outputs) -> score | (score, passed) | {"score", "passed", "detail"}``."""


class EvaluatorParams(BaseModel):
    row: dict[str, Any]
    outputs: dict[str, Any] | None = None


def evaluator(name: str) -> Callable[[EvaluatorFunction], EvaluatorFunction]:
    """Mark a function ``(row, outputs) -> score`` (sync or async) as the evaluator that
    `type: python, function: NAME` names in an evaluator file (docs/evaluations.md). It runs
    as an action, so on the worker, durably, once per row."""

    def mark(function: EvaluatorFunction) -> EvaluatorFunction:
        def run(params: EvaluatorParams, request: ActionInput) -> Any:
            return function(params.row, params.outputs)

        async def run_async(params: EvaluatorParams, request: ActionInput) -> Any:
            return await function(params.row, params.outputs)

        chosen = run_async if inspect.iscoroutinefunction(function) else run
        spec = ActionSpec(EVALUATOR_PREFIX + name, EvaluatorParams, chosen)
        setattr(function, ACTION_MARK, spec)
        return function

    return mark


AGGREGATOR_PREFIX = "aggregate_"
"""An aggregator NAME runs on the worker as the action `aggregate_NAME`."""
AggregatorFunction = Callable[[dict[str, list[Any]]], Any]
"""``(lines) -> {metric: value}``: per output name, its values over every row scored."""


class AggregatorParams(BaseModel):
    verdicts: list[Any]
    """One evaluator's outputs on each row it scored, in row order (a Python evaluator's:
    what it returned)."""


def by_name(verdicts: list[Any]) -> dict[str, list[Any]]:
    """Rows of outputs as one list per output name (None where a row lacks one); a verdict
    that is not a mapping (a number) is its `score`."""
    rows = [v if isinstance(v, dict) else {"score": v} for v in verdicts]
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: [row.get(name) for row in rows] for name in names}


def aggregator(name: str) -> Callable[[AggregatorFunction], AggregatorFunction]:
    """Mark a function ``(lines) -> {metric: value}`` (sync or async) as the aggregator an
    in-run evaluator names with `aggregate: NAME` (docs/evaluations.md): it runs once per
    variant after every row, as an action of the evaluation run, and what it returns are
    that evaluator's aggregate metrics."""

    def mark(function: AggregatorFunction) -> AggregatorFunction:
        def run(params: AggregatorParams, request: ActionInput) -> Any:
            return function(by_name(params.verdicts))

        async def run_async(params: AggregatorParams, request: ActionInput) -> Any:
            return await function(by_name(params.verdicts))

        chosen = run_async if inspect.iscoroutinefunction(function) else run
        spec = ActionSpec(AGGREGATOR_PREFIX + name, AggregatorParams, chosen)
        setattr(function, ACTION_MARK, spec)
        return function

    return mark


def marked_functions(actions: Iterable[str], prefix: str) -> set[str]:
    """The evaluator (or aggregator) names among a worker's actions, as files name them."""
    return {name.removeprefix(prefix) for name in actions if name.startswith(prefix)}


@dataclass(frozen=True)
class ValidatorSpec:
    name: str
    run: ValidatorFunction


def validator_spec(name: str, function: ValidatorFunction) -> ValidatorSpec:
    """A validator from a plain function, for registering one in code (`@validator` marks
    one in a module instead); a worker runs it given to `EnginePlugin(validators=...)`."""
    if not isinstance(name, str) or name.split() != [name]:
        raise ValueError(f"a validator's name must be one word without spaces, not {name!r}")
    if not callable(function):
        raise TypeError(f"validator '{name}': {function!r} is not callable")
    return ValidatorSpec(name, function)


def validator(name: str) -> Callable[[ValidatorFunction], ValidatorFunction]:
    """Mark a function ``(outputs) -> (is_valid, errors)`` (sync or async) as a validator
    that llm_call steps name in ``validate: [{validator: NAME}]``."""

    def mark(function: ValidatorFunction) -> ValidatorFunction:
        setattr(function, VALIDATOR_MARK, validator_spec(name, function))
        return function

    return mark


Spec = TypeVar("Spec", ActionSpec, ValidatorSpec)


def load_custom_actions(module_names: Iterable[str]) -> dict[str, ActionSpec]:
    """Every function marked with @action in the named modules."""
    return _marked(module_names, ACTION_MARK, ActionSpec)


def load_custom_validators(module_names: Iterable[str]) -> dict[str, ValidatorSpec]:
    """Every function marked with @validator in the named modules."""
    return _marked(module_names, VALIDATOR_MARK, ValidatorSpec)


def action_modules(module_names: Iterable[str]) -> dict[str, ModuleType]:
    """The module that defines each custom action (evaluators and aggregators too), by
    action name: what an evaluation keys a row's run by when the code changes."""
    return {spec.name: module for module, spec in _scan(module_names, ACTION_MARK, ActionSpec)}


def _marked(module_names: Iterable[str], attribute: str, kind: type[Spec]) -> dict[str, Spec]:
    return {spec.name: spec for _, spec in _scan(module_names, attribute, kind)}


def _scan(
    module_names: Iterable[str], attribute: str, kind: type[Spec]
) -> Iterator[tuple[ModuleType, Spec]]:
    """Each marked function's spec in the named modules, with its module."""
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            spec = getattr(value, attribute, None)
            if isinstance(spec, kind):
                yield module, spec


def params_models(actions: Mapping[str, ActionSpec]) -> dict[str, type[BaseModel]]:
    """What validation needs to know of a worker's actions: built-ins (sleep too) and custom."""
    return {**ACTION_PARAMS, **{name: spec.params for name, spec in actions.items()}}
