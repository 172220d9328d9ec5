"""The `load_definition` activity: a run started by file name (Temporal CLI, HTTP API, UI)
reads its definition from DEFINITIONS_DIR, and only from inside it, and a budgeted one gets
the worker's model prices with it."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.definitions import (
    OUTSIDE,
    budget_prices,
    confined,
    load_bundle,
    priced_in,
    quoted,
    usable_name,
)
from activities.pricing import DEFAULT_PRICES, Price
from workflows.actions import ACTION_PARAMS
from workflows.contracts import LOAD_DEFINITION, LoadDefinitionInput, LoadedDefinition
from workflows.errors import DefinitionError, FailureType


class DefinitionActivities:
    def __init__(
        self,
        definitions_dir: Path,
        actions: Mapping[str, type[BaseModel]] = ACTION_PARAMS,
        validators: Collection[str] = (),
        prices: Mapping[str, Price] = DEFAULT_PRICES,
    ) -> None:
        self._dir = definitions_dir
        self._actions = actions
        self._validators = validators
        self._prices = prices

    @activity.defn(name=LOAD_DEFINITION)
    async def load_definition(self, request: LoadDefinitionInput) -> LoadedDefinition:
        """Validating is CPU work (a large file takes a good part of a second): it runs on a
        thread, so the worker's event loop goes on running every other run's workflow tasks
        and activities meanwhile."""
        return await asyncio.to_thread(self._load, request.path)

    def _load(self, name: str) -> LoadedDefinition:
        path = self._dir / name
        relative = PurePosixPath(name)
        if (
            not usable_name(name)
            or relative.is_absolute()
            or ".." in relative.parts
            or not confined(path, self._dir)
        ):
            raise _failure(f"definition_file {quoted(name)} {OUTSIDE}")
        try:
            if not path.is_file():
                raise _failure(f"no definition file {quoted(name)} in the definitions directory")
            loaded = load_bundle(
                path,
                name,
                self._actions,
                root=self._dir,
                validators=self._validators,
                priced=priced_in(self._prices),
            )
            return loaded.model_copy(update={"prices": budget_prices(loaded, self._prices)})
        except (DefinitionError, OSError) as exc:
            raise _failure(str(exc)) from None


def _failure(message: str) -> ApplicationError:
    return ApplicationError(message, type=FailureType.DEFINITION, non_retryable=True)
