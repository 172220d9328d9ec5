"""Datasets for `starter.py eval`: JSONL, CSV or a JSON list, each row located by its file
and line, mapped to the definition's variables and checked before anything is paid. Rows
are data: never rendered as templates, never used as paths."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflows.definition import Definition
from workflows.errors import DefinitionError, Problem, VariablesError
from workflows.validation import resolve_variables

MAX_PROBLEMS = 20
"""Problems shown at most: a column missing from every row is said once, not per row."""


@dataclass
class Row:
    line: int
    """Where the row starts in its file (1-based), for located messages."""
    values: dict[str, Any]


def read_rows(path: Path) -> list[Row]:
    """Every row of a JSONL, CSV or JSON-list file; DefinitionError names file and line."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise DefinitionError([Problem(shown, 1, 1, f"cannot read: {reason}")]) from None
    if path.suffix.lower() == ".csv":
        return _csv_rows(text, shown)
    if path.suffix.lower() == ".json":
        return _json_rows(text, shown)
    return _jsonl_rows(text, shown)


def _jsonl_rows(text: str, shown: str) -> list[Row]:
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(shown, number, exc.colno, f"not JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(shown, number, 1, "a row is a JSON object ({...})"))
            continue
        rows.append(Row(number, value))
    if problems:
        raise DefinitionError(problems)
    return rows


def _json_rows(text: str, shown: str) -> list[Row]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            [Problem(shown, exc.lineno, exc.colno, f"not JSON: {exc.msg}")]
        ) from None
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise DefinitionError([Problem(shown, 1, 1, "a JSON dataset is a list of objects")])
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("{")]
    lines = starts if len(starts) == len(value) else [1] * len(value)
    return [Row(line, row) for line, row in zip(lines, value, strict=True)]


def _csv_rows(text: str, shown: str) -> list[Row]:
    reader = csv.DictReader(text.splitlines())
    rows, problems = [], []
    for values in reader:
        line = reader.line_num
        if None in values or None in values.values():
            problems.append(Problem(shown, line, 1, "this line's cells do not match the header"))
            continue
        rows.append(Row(line, dict(values)))
    if problems:
        raise DefinitionError(problems)
    return rows


def pick(rows: list[Row], limit: int | None, sample: int | None, seed: int) -> list[Row]:
    """`--sample N --seed S` (the same rows for the same seed), then `--limit N`."""
    if sample is not None and sample < len(rows):
        chosen = sorted(random.Random(seed).sample(range(len(rows)), sample))
        rows = [rows[index] for index in chosen]
    return rows[:limit] if limit is not None else rows


def row_variables(
    rows: list[Row], shown: str, definition: Definition, mapping: dict[str, str]
) -> list[dict[str, Any]]:
    """Each row's run variables: a declared variable from its column (`mapping` names the
    column where the names differ), typed as declared; every problem located."""
    declared = definition.workflow.variables
    unknown = sorted(set(mapping) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise DefinitionError(
            [
                Problem(
                    shown, 1, 1, f"--map names no variable {unknown[0]!r} (the variables: {known})"
                )
            ]
        )
    columns = {column for row in rows for column in row.values}
    problems = []
    for name, spec in declared.items():
        column = mapping.get(name, name)
        if spec.required and column not in columns:
            hint = "" if name in mapping else f" (or --map {name}=COLUMN)"
            known = ", ".join(sorted(columns)) or "none"
            message = f"no column {column!r} for variable {name!r}{hint}; the columns: {known}"
            problems.append(Problem(shown, 1, 1, message))
    if problems:
        raise DefinitionError(problems)
    found = []
    for row in rows:
        given = {}
        for name, spec in declared.items():
            column = mapping.get(name, name)
            if column in row.values:
                given[name] = _typed(row.values[column], spec.type)
            elif spec.required:
                problems.append(Problem(shown, row.line, 1, f"no {column!r} in this row"))
        try:
            found.append(resolve_variables(definition, given))
        except VariablesError as exc:
            if given.keys() >= {n for n, v in declared.items() if v.required}:
                problems.append(Problem(shown, row.line, 1, str(exc)))
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        last = problems[MAX_PROBLEMS - 1]
        problems = problems[: MAX_PROBLEMS - 1] + [
            Problem(last.file, last.line, last.col, f"{last.message} (and {more} more problems)")
        ]
    if problems:
        raise DefinitionError(problems)
    return found


def _typed(value: Any, kind: str | None) -> Any:
    """A CSV cell is text: read it as the variable's declared type where it is one."""
    if not isinstance(value, str) or kind in (None, "string"):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    return parsed if kind != "number" or not isinstance(parsed, bool) else value
