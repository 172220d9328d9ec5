"""Definition files and YAML text, loaded and validated with the custom actions and
validators of ACTION_MODULES. Kept apart from the client API so `starter.py validate`
answers without loading Temporal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from activities.definitions import has_budget, load_bundle, load_text_bundle
from activities.pricing import price_of
from activities.registry import load_custom_actions, load_custom_validators, params_models
from engine.settings import Settings
from workflows.contracts import LoadedDefinition, ModelPrice
from workflows.definition import LlmCallStep
from workflows.routing import route


def load_file(
    path: str | Path, settings: Settings, shown: str | None = None, root: Path | None = None
) -> LoadedDefinition:
    """A definition file and the files its `workflow` steps run, validated together (with
    the custom actions and validators of ACTION_MODULES); DefinitionError lists every
    problem as FILE:LINE:COL (`shown` names the file). With `root`, child files must lie
    inside it. A run with a budget must call only models of the price table (PRICES_FILE)."""
    actions, validators, priced = _actions(settings), _validators(settings), _priced(settings)
    return load_bundle(Path(path), shown or str(path), actions, root, validators, priced)


def load_yaml(
    text: str,
    settings: Settings,
    name: str = "<yaml>",
    base: Path | None = None,
    root: Path | None = None,
) -> LoadedDefinition:
    """Like `load_file`, for YAML text; child files are looked up under `base`."""
    path = (base or Path.cwd()) / name
    actions, validators, priced = _actions(settings), _validators(settings), _priced(settings)
    return load_text_bundle(text, name, path, actions, root, validators, priced)


def budget_prices(loaded: LoadedDefinition, settings: Settings) -> dict[str, ModelPrice]:
    """The price of every model a run with a budget may call, by `provider/model`, for the
    run to reserve each call's worst case with (nothing for runs without a budget)."""
    definitions = [loaded.definition, *loaded.children.values()]
    if not any(has_budget(definition) for definition in definitions):
        return {}
    prices: dict[str, ModelPrice] = {}
    for definition in definitions:
        spec = definition.workflow
        for step in spec.steps:
            if isinstance(step, LlmCallStep):
                for name in [step.model or spec.defaults.model, *step.fallback_models]:
                    target = route(name or "")
                    price = price_of(settings.prices, target.provider, target.model)
                    if price is not None:
                        key = f"{target.provider}/{target.model}"
                        prices[key] = ModelPrice(input=price.input, output=price.output)
    return prices


def _actions(settings: Settings) -> dict[str, Any]:
    return params_models(load_custom_actions(settings.action_modules))


def _validators(settings: Settings) -> set[str]:
    return set(load_custom_validators(settings.action_modules))


def _priced(settings: Settings) -> Callable[[str, str], bool]:
    return lambda provider, model: price_of(settings.prices, provider, model) is not None
