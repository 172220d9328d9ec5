"""Definition files and YAML text, loaded and validated with the custom actions and
validators of ACTION_MODULES. Kept apart from the client API so `starter.py validate`
answers without loading Temporal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from activities.definitions import load_bundle, load_text_bundle, priced_in
from activities.registry import load_custom_actions, load_custom_validators, params_models
from engine.settings import Settings
from workflows.contracts import LoadedDefinition


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


def _actions(settings: Settings) -> dict[str, Any]:
    return params_models(load_custom_actions(settings.action_modules))


def _validators(settings: Settings) -> set[str]:
    return set(load_custom_validators(settings.action_modules))


def _priced(settings: Settings) -> Callable[[str, str], bool]:
    return priced_in(settings.prices)
