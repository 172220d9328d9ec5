"""save_to_file: atomic writes, each run into a folder of its own under the output directory.

A run writes to ``OUTPUT_DIR/runs/<workflow id>/``, so no run can overwrite another run's
files, or, with ``shared: true``, to ``OUTPUT_DIR/shared/``. Nothing else under
``OUTPUT_DIR`` (the default SQLite database, for one) is reachable.

A workflow id can be reused (`reuse_id`, or after Temporal forgot the first run), so the
folder belongs to the first run chain that writes to it: ``runs/.owners/<folder>`` holds
that chain's first run id, and any later chain under the same id writes to
``runs/<workflow id>@<its first run id>/`` instead ('@' is never part of an encoded id).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.actions import SaveToFileParams
from workflows.contracts import ActionInput
from workflows.errors import FailureType

MAX_NAME_BYTES = 255
"""Of one path component, as on most file systems."""


OWNERS = ".owners"
"""Under runs/: which run chain owns each run folder (no encoded id starts with '.')."""


def run_folder(workflow_id: str, chain: str = "") -> str:
    """The workflow id as one path component: '/' and '..' stay text, and different ids
    give different folders (percent-encoding never yields '+' or '@', so a shortened name's
    '+<hash>' or a later chain's '@<first run id>' cannot be any other id's name)."""
    name = quote(workflow_id, safe="") or "%"
    if name.startswith("."):  # '.', '..' and hidden names
        name = "%2E" + name[1:]
    suffix = f"@{quote(chain, safe='')}" if chain else ""
    if len(name) + len(suffix) > MAX_NAME_BYTES:
        digest = hashlib.sha256(workflow_id.encode("utf-8", "surrogatepass")).hexdigest()
        name = f"{name[: 200 - len(suffix)]}+{digest[:32]}"
    return name + suffix


def own_folder(runs: Path, workflow_id: str, chain: str) -> str:
    """The run folder of run chain `chain` under `workflow_id`: the id's own folder if this
    chain is the first to write to it, else one named after the chain as well."""
    name = run_folder(workflow_id)
    if not chain:  # an action scheduled before chains were sent: as it was
        return name
    owners = runs / OWNERS
    claim = owners / name
    if not claim.exists():
        if (runs / name).exists():  # written by a run from before owners were kept
            return run_folder(workflow_id, chain)
        owners.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=owners, prefix=".claim.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(chain)
            os.link(temporary, claim)  # atomic: the first chain's claim stands
        except FileExistsError:
            pass
        finally:
            Path(temporary).unlink(missing_ok=True)
    owner = claim.read_text(encoding="utf-8")
    return name if owner == chain else run_folder(workflow_id, chain)


def _refused(message: str) -> ApplicationError:
    return ApplicationError(
        f"save_to_file: {message}", type=FailureType.PATH_REFUSED, non_retryable=True
    )


class FileActions:
    def __init__(self, output_dir: Path) -> None:
        self._root = output_dir

    async def save(self, params: SaveToFileParams, request: ActionInput) -> dict[str, Any]:
        relative = PurePosixPath(params.path or ".") / params.filename
        shown = repr(str(relative)[:300])
        try:
            parts = [part.encode("utf-8") for part in (params.path, params.filename)]
        except UnicodeEncodeError:
            raise _refused(f"refusing path {shown}: not valid text") from None
        if any(b"\0" in part for part in parts):
            raise _refused(f"refusing path {shown}: it holds a NUL byte")
        if any(len(part) > MAX_NAME_BYTES for part in b"/".join(parts).split(b"/")):
            raise _refused(f"refusing path {shown}: a name is over {MAX_NAME_BYTES} bytes")
        if relative.is_absolute() or ".." in relative.parts or not params.filename.strip():
            raise _refused(
                f"refusing path {shown}: write a relative path without '..'; files go under "
                "the worker's output directory"
            )
        if params.shared:
            folder = PurePosixPath("shared")
        else:
            workflow_id = activity.info().workflow_id or request.idempotency_key.rpartition("/")[0]
            name = own_folder(self._root / "runs", workflow_id, request.first_run_id)
            folder = PurePosixPath("runs", name)
        base = (self._root / folder).resolve()
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or target == base:
            raise _refused(f"refusing path {shown}: it names no file inside {str(folder)!r}")
        data = params.data
        text = data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False)
        encoded = text.encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{target.name[:50]}."  # the temporary name stays a legal length
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(encoded)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return {"path": str(folder / relative), "bytes": len(encoded)}
