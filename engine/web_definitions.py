"""The workbench's definitions page: pick a file under DEFINITIONS_DIR or paste YAML, see
every problem at its line, and start a run with a form for the definition's variables (typed,
defaults filled). Loads and starts exactly as `POST /workflows/validate` and
`/workflows/execute[-yaml]` do (engine/rest_definitions.py, the client API)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from engine.rest_definitions import DefinitionLoader
from engine.rest_deps import engine
from engine.web_render import form_of, problem, render
from workflows.contracts import LoadedDefinition
from workflows.errors import DefinitionError, Problem, WorkflowError
from workflows.validation import typed_variables

MAX_LISTED = 300
SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages", "tests"}
router = APIRouter()


class Line(BaseModel):
    number: int
    text: str
    problems: list[str] = []


class VariableField(BaseModel):
    name: str
    type: str
    value: str
    required: bool
    help: str | None = None


def definition_files(root: Path) -> list[str]:
    """YAML files under the root (not hidden, not test files), at most MAX_LISTED."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")) and not name.endswith((".test.yaml", ".test.yml")):
                found.append((Path(folder) / name).relative_to(root).as_posix())
                if len(found) >= MAX_LISTED:
                    return found
    return found


def source_lines(text: str, problems: list[Problem]) -> list[Line]:
    lines = [Line(number=n, text=line) for n, line in enumerate(text.splitlines(), 1)]
    for found in problems:
        if 1 <= found.line <= len(lines):
            lines[found.line - 1].problems.append(f"{found.col}: {found.message}")
    return lines


def variable_fields(loaded: LoadedDefinition) -> list[VariableField]:
    fields = []
    for name, spec in loaded.definition.workflow.variables.items():
        default = spec.default
        value = (
            "" if default is None else default if isinstance(default, str) else json.dumps(default)
        )
        kind = spec.type or ("string" if isinstance(default, str) else "any")
        fields.append(
            VariableField(
                name=name, type=kind, value=value, required=spec.required, help=spec.description
            )
        )
    return fields


def loader(request: Request) -> DefinitionLoader:
    definitions: DefinitionLoader = request.app.state.definitions
    return definitions


@router.get("/definitions")
async def definitions(request: Request, file: str = "") -> Response:
    root = request.app.state.settings.definitions_dir
    if not file:
        return render(request, "definitions.html", title="Definitions", file="",
                      files=definition_files(root), text="", checked=None)  # fmt: skip
    return await _checked(request, file=file, text="")


@router.post("/definitions")
async def check(request: Request) -> Response:
    """Check pasted YAML (read-only tokens may: it starts nothing)."""
    form = await form_of(request, write=False)
    if isinstance(form, Response):
        return form
    return await _checked(request, file="", text=form.get("yaml", ""))


async def _checked(request: Request, file: str, text: str) -> Response:
    """The definition checked: its text by line with each problem at its line, and the
    variables form when it is valid. A file is read only once the loader has found it
    inside DEFINITIONS_DIR."""
    fields: list[VariableField] = []
    try:
        loaded = await (loader(request).file(file) if file else loader(request).text(text))
    except DefinitionError as exc:
        problems, valid = list(exc.problems), False
    except WorkflowError as exc:
        return problem(request, exc)
    else:
        fields, problems, valid = variable_fields(loaded), list(loaded.warnings), True
    if file:
        root = request.app.state.settings.definitions_dir
        text = (root / file).read_text(encoding="utf-8", errors="replace")
    return render(request, "definitions.html", title=file or "Definition", files=[], file=file,
                  text=text, checked=source_lines(text, problems), problems=problems,
                  valid=valid, fields=fields)  # fmt: skip


@router.post("/definitions/start")
async def start(request: Request) -> Response:
    form = await form_of(request)
    if isinstance(form, Response):
        return form
    file, text = form.get("file", ""), form.get("yaml", "")
    try:
        loaded = await (loader(request).file(file) if file else loader(request).text(text))
    except DefinitionError:
        return await _checked(request, file=file, text=text)
    except WorkflowError as exc:
        return problem(request, exc)
    texts = {k[len("var.") :]: v for k, v in form.items() if k.startswith("var.") and v != ""}
    try:
        variables: dict[str, Any] = typed_variables(loaded.definition, texts)
        started = await (await engine(request)).start(loaded, variables)
    except WorkflowError as exc:  # variables that do not fit: the form again, as filled
        fields = variable_fields(loaded)
        for field in fields:
            field.value = form.get(f"var.{field.name}", field.value)
        if file:
            text = (request.app.state.settings.definitions_dir / file).read_text(errors="replace")
        return render(request, "definitions.html", 400, title=file or "Definition", files=[],
                      file=file, text=text, checked=source_lines(text, []), problems=[],
                      valid=True, fields=fields, message=str(exc))  # fmt: skip
    return RedirectResponse(f"/runs/{quote(started.execution_id, safe='')}?done=started", 303)
