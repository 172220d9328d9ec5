"""The ``load_definition`` activity: read and validate a definition file once per run.

Its result lands in history, so the run replays with the exact definition it started with,
whatever later happens to the file.
"""

from __future__ import annotations

from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.contracts import LoadDefinitionInput
from workflows.definition import Definition
from workflows.errors import DefinitionError
from workflows.validation import load_definition

MAX_DEFINITION_BYTES = 1_000_000


class DefinitionActivities:
    def __init__(self, definitions_dir: Path) -> None:
        self._dir = definitions_dir

    @activity.defn(name="load_definition")
    async def load_definition(self, request: LoadDefinitionInput) -> Definition:
        path = self._dir / request.path
        try:
            if path.stat().st_size > MAX_DEFINITION_BYTES:
                raise ApplicationError(
                    f"{request.path}: larger than {MAX_DEFINITION_BYTES} bytes",
                    type="DefinitionError",
                    non_retryable=True,
                )
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ApplicationError(
                f"cannot read definition {request.path!r} (worker folder {self._dir}): "
                f"{getattr(exc, 'strerror', None) or exc}",
                type="DefinitionNotFound",
                non_retryable=True,
            ) from None
        try:
            return load_definition(text, request.path)
        except DefinitionError as exc:
            raise ApplicationError(str(exc), type="DefinitionError", non_retryable=True) from None
