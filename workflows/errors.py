"""The project's errors.

    WorkflowError                  base: anything a user can act on, printed as one line
    ├── DefinitionError            a definition file is invalid (carries every problem found)
    ├── TemplateError              a template fails to compile or render
    └── VariablesError             the run's variables do not fit the definition

Inside a run these become ``ApplicationError`` (non-retryable): retrying cannot fix a file.
"""

from __future__ import annotations

from dataclasses import dataclass


class WorkflowError(Exception):
    """Base of every error a user can act on."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a definition file."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class DefinitionError(WorkflowError):
    """A definition is invalid; ``problems`` lists them all, each located."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TemplateError(WorkflowError):
    """A template fails to compile or render; ``lineno`` is the line inside the template."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


class VariablesError(WorkflowError):
    """The run's variables do not fit the definition's declared variables."""
