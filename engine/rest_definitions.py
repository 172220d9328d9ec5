"""The definitions a request names or sends, loaded as the client API loads them, but
confined: a file and every child file must lie inside DEFINITIONS_DIR (the same rule the
worker keeps for runs started by file name, activities/definitions.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from activities.definitions import confined, load_bundle, load_text_bundle, quoted, usable_name
from activities.registry import load_custom_actions, load_custom_validators, params_models
from engine.settings import Settings
from workflows.contracts import LoadedDefinition
from workflows.errors import UsageError


def load_file(name: str, settings: Settings) -> LoadedDefinition:
    """A definition file under DEFINITIONS_DIR, its child files confined there too."""
    root = settings.definitions_dir
    outside = "must be a path inside the server's definitions directory (DEFINITIONS_DIR)"
    if not usable_name(name):
        raise UsageError(f"workflow_file {quoted(name)} is not a usable file name")
    if Path(name).is_absolute() or not confined(root / name, root):
        raise UsageError(f"workflow_file {quoted(name)} {outside}")
    if not (root / name).is_file():
        raise UsageError(f"workflow_file {quoted(name)}: no such file in DEFINITIONS_DIR")
    return load_bundle(root / name, name, _actions(settings), root, _validators(settings))


def load_yaml(text: str, settings: Settings) -> LoadedDefinition:
    root = settings.definitions_dir
    return load_text_bundle(
        text, "<yaml>", root / "<yaml>", _actions(settings), root, _validators(settings)
    )


def _actions(settings: Settings) -> dict[str, Any]:
    return params_models(load_custom_actions(settings.action_modules))


def _validators(settings: Settings) -> set[str]:
    return set(load_custom_validators(settings.action_modules))
