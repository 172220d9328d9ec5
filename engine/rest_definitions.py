"""The definitions a request names or sends, loaded as the client API loads them, but
confined: a file and every child file must lie inside DEFINITIONS_DIR (the same rule the
worker keeps for runs started by file name, activities/definitions.py)."""

from __future__ import annotations

from pathlib import Path

from activities.definitions import confined, quoted, usable_name
from engine import definition_files
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
    return definition_files.load_file(root / name, settings, shown=name, root=root)


def load_yaml(text: str, settings: Settings) -> LoadedDefinition:
    root = settings.definitions_dir
    return definition_files.load_yaml(text, settings, base=root, root=root)
