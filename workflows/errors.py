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
        ├── RunEnded               the run has ended: what was asked needs a running run
        ├── StatusUnavailable      the run did not answer the status query
        ├── SignalRefused          the run refused a signal's payload (it keeps waiting)
        ├── LocalStackError        the local dev server or worker cannot be started
        └── TemporalError          Temporal refused a request, in its own words
            ├── TemporalUnavailable    Temporal cannot be reached, or did not answer in time
            └── TemporalBusy           Temporal is over a rate limit: try again later

Inside a run the first three become ``ApplicationError`` (non-retryable): retrying cannot
fix a file. Callers of the client API catch ``WorkflowError`` for all of them; Temporal's own
exceptions become these in one place (engine/temporal_errors.py). A run's or an activity's
failure carries one of the ``FailureType`` names below as its ``type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


class FailureType:
    """The `type` of every `ApplicationError` the engine raises: what a run's failure, a
    step's error and the Temporal UI show, and what retry policies match. Stored histories
    hold these values, so a value never changes; a new failure gets a new name here."""

    # a run's own failures (workflows/)
    DEFINITION: Final = "DefinitionError"
    TEMPLATE: Final = "TemplateError"
    VARIABLES: Final = "VariablesError"
    SIGNAL_REFUSED: Final = "SignalRefused"
    INPUT: Final = "InputError"
    STEP_FAILED: Final = "StepFailed"
    PAYLOAD_REFUSED: Final = "PayloadRefused"
    BUDGET: Final = "BudgetError"
    BUDGET_EXCEEDED: Final = "BudgetExceeded"
    # model calls (activities/llm.py)
    PROVIDER_NOT_CONFIGURED: Final = "ProviderNotConfigured"
    PROVIDER_REFUSAL: Final = "ProviderRefusal"
    PROVIDER_EMPTY_REPLY: Final = "ProviderEmptyReply"
    PROVIDER_TIMEOUT: Final = "ProviderTimeout"
    PROVIDER_UNREACHABLE: Final = "ProviderUnreachable"
    PROVIDER_ERROR: Final = "ProviderError"
    # actions, validators and tools (activities/)
    UNKNOWN_ACTION: Final = "UnknownAction"
    UNKNOWN_VALIDATOR: Final = "UnknownValidator"
    INVALID_PARAMS: Final = "InvalidParams"
    INVALID_IMAGE: Final = "InvalidImage"
    INVALID_VALIDATOR_RESULT: Final = "InvalidValidatorResult"
    URL_REFUSED: Final = "UrlRefused"
    DNS_ERROR: Final = "DnsError"
    HTTP_TIMEOUT: Final = "HttpTimeout"
    HTTP_CONNECT_ERROR: Final = "HttpConnectError"
    PATH_REFUSED: Final = "PathRefused"
    SECRET_MISSING: Final = "SecretMissing"
    EMAIL_REFUSED: Final = "EmailRefused"
    UNKNOWN_CONNECTION: Final = "UnknownConnection"
    DATABASE_UNAVAILABLE: Final = "DatabaseUnavailable"
    DATABASE_ERROR: Final = "DatabaseError"
    MCP_UNAVAILABLE: Final = "McpUnavailable"
    NOT_IMPORTED: Final = "NotImported"
    """A Prompt flow node the importer could not map (activities/promptflow_compat.py)."""
    # scripted replies in tests (activities/scripted.py)
    SCRIPTED_ERROR: Final = "ScriptedError"
    SCRIPT_MISSING: Final = "ScriptMissing"

    @staticmethod
    def http(status: int) -> str:
        """An HTTP action answered with an error status: `HTTP404`."""
        return f"HTTP{status}"

    @staticmethod
    def provider_http(status: int) -> str:
        """A provider answered with an error status: `ProviderHTTP429`."""
        return f"ProviderHTTP{status}"


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


EndedState = Literal["failed", "cancelled", "terminated", "timed_out"]
"""How a run that did not complete ended."""


class RunFailed(ClientError):
    """The run ended without completing; `reason` is Temporal's or the step's own words,
    `state` how it ended."""

    def __init__(self, execution_id: str, reason: str, state: EndedState = "failed") -> None:
        super().__init__(f"run {execution_id} {reason}")
        self.execution_id = execution_id
        self.reason = reason
        self.state = state


class RunEnded(ClientError):
    """The run has ended, and what was asked (a signal, say) reaches only a running run."""


class StatusUnavailable(ClientError):
    """The run did not answer its status query (no worker polls its queue, say)."""


class SignalRefused(ClientError):
    """The run refused a signal sent as an update (or another update, a budget's): no step
    waits for it, or its payload does not fit the step's declared outputs. The run goes on
    waiting."""


class LocalStackError(ClientError):
    """The local dev server or worker cannot be reached or started."""


class TemporalError(ClientError):
    """Temporal refused a request; `detail` is its own words, `address` the server's."""

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(self.describe(address, detail))
        self.address = address
        self.detail = detail

    @staticmethod
    def describe(address: str, detail: str) -> str:
        return f"Temporal at {address} answered: {detail}"


class TemporalUnavailable(TemporalError):
    """Temporal cannot be reached, or did not answer in time."""

    @staticmethod
    def describe(address: str, detail: str) -> str:
        return f"cannot reach Temporal at {address}: {detail}"


class TemporalBusy(TemporalError):
    """Temporal is over one of its rate limits: the same request may pass later."""
