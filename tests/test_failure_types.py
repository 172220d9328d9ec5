"""A failure's type is named once, in workflows/errors.py (`FailureType`): a retry policy,
a test or a user's code that matches a type must not miss one spelt differently elsewhere,
and the values stored histories hold must not drift."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workflows.errors import FailureType

NAMES = {value for name, value in vars(FailureType).items() if name.isupper()}
CODE = sorted(
    path
    for folder in ("workflows", "activities", "engine")
    for path in (ROOT / folder).rglob("*.py")
    if path != ROOT / "workflows" / "errors.py"
    and path.name != "__init__.py"  # a package's public names (`__all__`), not failure types
) + sorted(ROOT.glob("*.py"))


def _strings(tree: ast.AST) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def _literal_types(tree: ast.AST) -> Iterator[ast.keyword]:
    """`type=` given as text where an ApplicationError is made."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and "ApplicationError" in ast.unparse(node.func):
            for keyword in node.keywords:
                if keyword.arg == "type" and isinstance(
                    keyword.value, ast.Constant | ast.JoinedStr
                ):
                    yield keyword


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_failure_types_are_written_only_in_the_error_tree(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    spelt = [
        f"line {node.lineno}: {node.value!r}" for node in _strings(tree) if node.value in NAMES
    ]
    literal = [f"line {kw.lineno}: type={ast.unparse(kw.value)}" for kw in _literal_types(tree)]
    assert not spelt + literal, f"use FailureType (workflows/errors.py) in {path.name}: " + (
        "; ".join(spelt + literal)
    )


def test_the_guard_sees_a_literal_type():
    code = 'raise ApplicationError("x", type="DefinitionError")\nkind = "StepFailed"'
    tree = ast.parse(code)
    assert [kw.lineno for kw in _literal_types(tree)] == [1]
    assert sorted(node.value for node in _strings(tree) if node.value in NAMES) == [
        "DefinitionError",
        "StepFailed",
    ]


def _failure_types(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        info = value.get("applicationFailureInfo")
        if isinstance(info, dict) and info.get("type"):
            yield info["type"]
        for inner in value.values():
            yield from _failure_types(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _failure_types(inner)


def test_stored_histories_hold_only_named_failure_types():
    found = {
        kind
        for path in (ROOT / "tests" / "histories").rglob("*.json")
        for kind in _failure_types(json.loads(path.read_text()))
    }
    assert found, "the histories hold failures; the search found none"
    assert found <= NAMES, f"not in FailureType: {sorted(found - NAMES)}"
