"""The definitions a request names or sends, loaded as the client API loads them, but
confined: a file and every child file must lie inside DEFINITIONS_DIR (the same rule the
worker keeps for runs started by file name, activities/definitions.py).

Validating is CPU work (a 1 MB file of 16,000 steps takes a good part of a second): it runs
on a worker thread, a few at a time, so the event loop (and `/health`, and every other
request) goes on answering while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from activities.definitions import confined, quoted, usable_name
from engine import definition_files
from engine.settings import Settings
from workflows.contracts import LoadedDefinition
from workflows.errors import UsageError

MAX_CONCURRENT_LOADS = 2
"""Definitions validated at once per API process; more requests wait their turn."""
T = TypeVar("T")


class DefinitionLoader:
    """Loads and validates definitions off the event loop, at most MAX_CONCURRENT_LOADS at
    a time (one per app: see create_app)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_LOADS)
        self.in_progress = 0
        """Definitions being validated now."""

    async def file(self, name: str) -> LoadedDefinition:
        return await self._off_loop(lambda: load_file(name, self.settings))

    async def text(self, text: str) -> LoadedDefinition:
        return await self._off_loop(lambda: load_yaml(text, self.settings))

    async def _off_loop(self, work: Callable[[], T]) -> T:
        async with self._slots:
            self.in_progress += 1
            try:
                return await asyncio.to_thread(work)
            finally:
                self.in_progress -= 1


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
