"""Workflow code must make the same decisions when it is replayed. The worker runs it without
Temporal's sandbox (engine.plugin.workflow_runner), so this is the guard instead: everything under
workflows/ imports only modules that cannot reach the clock, the network, the filesystem or
an unseeded random source, and calls no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

DETERMINISTIC = {
    "__future__", "asyncio", "collections", "contextlib", "contextvars", "dataclasses",
    "datetime", "difflib", "functools", "graphlib", "itertools", "jinja2", "json", "math",
    "opentelemetry",
    "pydantic",
    "pydantic_core", "re", "temporalio", "typing", "workflows", "yaml",
}  # fmt: skip
"""Top-level packages workflow code may import. `asyncio` inside a workflow runs on
Temporal's deterministic event loop; `datetime` is allowed for its types, not its clock."""
EXCEPTIONS = {
    ("templates.py", "random"),
    ("validation.py", "gc"),
    ("lazy_names.py", "importlib"),
}
"""The `random` filter uses `random` only outside a run; inside one, `workflow.random()`.
Validation pauses the cycle collector while it checks a file (never inside a run; it changes
no result). The package's public names import only its own modules, on first use."""
CLOCKS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
MODULES = sorted((ROOT / "workflows").rglob("*.py"))


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT / "workflows")))
def test_workflow_code_imports_only_deterministic_modules(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    allowed = DETERMINISTIC | {module for file, module in EXCEPTIONS if file == path.name}
    assert imported(tree) <= allowed, f"{path.name} imports {imported(tree) - allowed}"


def clock_calls(tree: ast.AST) -> list[int]:
    """Lines that call a clock other than `workflow.now()`."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCKS
        and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "workflow")
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT / "workflows")))
def test_workflow_code_reads_no_clock(path: Path):
    """`workflow.now()` is the run's clock; datetime.now() and time.time() are not."""
    assert clock_calls(ast.parse(path.read_text(), str(path))) == []


def test_the_guard_catches_a_socket_and_a_clock():
    tree = ast.parse("import socket\nfrom datetime import datetime\nx = datetime.now()\n")
    assert imported(tree) - DETERMINISTIC == {"socket"}
    assert clock_calls(tree) == [3]
    assert clock_calls(ast.parse("t = workflow.now()")) == []
