"""The project's errors.

    WorkflowError                  base: anything a user can act on, printed as one line
    ├── DefinitionError            a definition file is invalid (carries every problem found)
    ├── TemplateError              a template fails to compile or render
    │   └── TemplateLimitError     a render went over a limit (workflows/template_limits.py)
    ├── VariablesError             the run's variables do not fit the definition
    └── ClientError                the client API, the CLI and the local stack
        ├── UsageError             a request that cannot be carried out as written
        ├── RunNotFound            no run with that id in the namespace
        ├── RunExists              a new run's id is taken (and reuse was not asked for)
        ├── RunFailed              the run ended without completing (failed, cancelled...)
        ├── StatusUnavailable      the run did not answer the status query
        ├── SignalRefused          the run refused a signal's payload (it keeps waiting)
        └── LocalStackError        the local dev server or worker cannot be started

Inside a run the first three become ``ApplicationError`` (non-retryable): retrying cannot
fix a file. Callers of the client API catch ``WorkflowError`` for all of them.
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

    def __post_init__(self) -> None:
        # A message quotes what the file holds, which may span lines; the error stays one line.
        if "\n" in self.message or "\r" in self.message:
            one_line = " ".join(self.message.split())
            object.__setattr__(self, "message", one_line)

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


class ClientError(WorkflowError):
    """A request to the engine (client API, CLI, local stack) that cannot be carried out."""


class UsageError(ClientError):
    """The request itself is wrong: say what to write instead."""


class RunNotFound(ClientError):
    """No run with that id in the namespace."""


class RunExists(ClientError):
    """A run with the id a new run asks for exists (running, or ended and still kept), and
    the caller did not ask to reuse it."""


class RunFailed(ClientError):
    """The run ended without completing; `reason` is Temporal's or the step's own words."""

    def __init__(self, execution_id: str, reason: str) -> None:
        super().__init__(f"run {execution_id} {reason}")
        self.execution_id = execution_id
        self.reason = reason


class RunEnded(ClientError):
    """The run has ended, and what was asked (a signal, say) reaches only a running run."""


class StatusUnavailable(ClientError):
    """The run did not answer its status query (no worker polls its queue, say)."""


class SignalRefused(ClientError):
    """The run refused a signal sent as an update: no step waits for it, or its payload does
    not fit the step's declared outputs. The run goes on waiting."""


class LocalStackError(ClientError):
    """The local dev server or worker cannot be reached or started."""
