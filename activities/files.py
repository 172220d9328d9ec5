"""save_to_file: atomic writes, only under the worker's output directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from temporalio.exceptions import ApplicationError

from workflows.actions import SaveToFileParams
from workflows.contracts import ActionInput


class FileActions:
    def __init__(self, output_dir: Path) -> None:
        self._root = output_dir

    async def save(self, params: SaveToFileParams, request: ActionInput) -> dict[str, Any]:
        relative = PurePosixPath(params.path or ".") / params.filename
        if relative.is_absolute() or ".." in relative.parts or not params.filename.strip():
            raise ApplicationError(
                f"save_to_file: refusing path {str(relative)!r}: write a relative path without "
                "'..'; files go under the worker's output directory",
                type="PathRefused",
                non_retryable=True,
            )
        root = self._root.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise ApplicationError(
                f"save_to_file: {str(relative)!r} leaves the output directory",
                type="PathRefused",
                non_retryable=True,
            )
        data = params.data
        text = data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False)
        encoded = text.encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(encoded)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return {"path": str(target.relative_to(root)), "bytes": len(encoded)}
