"""Pure, deterministic code: the definition model, validation, templates and the interpreter.

The public names below are imported on first use, so importing one pure module (or this
package) does not load the interpreter, pydantic models or Jinja."""

from __future__ import annotations

from workflows.lazy_names import lazy_names

TYPE_CHECKING = False  # typing's own flag costs an import; type checkers read this one alike
if TYPE_CHECKING:
    from workflows.contracts import (
        ActionInput,
        BudgetStatus,
        ItemResult,
        RunInput,
        RunResult,
        RunStatus,
        StepResult,
        Usage,
        ValidatorInput,
    )
    from workflows.definition import Definition, json_schema
    from workflows.errors import (
        ClientError,
        DefinitionError,
        LocalStackError,
        Problem,
        RunEnded,
        RunExists,
        RunFailed,
        RunNotFound,
        SignalRefused,
        StatusUnavailable,
        TemplateError,
        UsageError,
        VariablesError,
        WorkflowError,
    )
    from workflows.interpreter import YamlWorkflow
    from workflows.template_limits import TemplateLimitError
    from workflows.validation import load_definition, resolve_variables

__all__ = [
    "ActionInput",
    "BudgetStatus",
    "ClientError",
    "Definition",
    "DefinitionError",
    "ItemResult",
    "LocalStackError",
    "Problem",
    "RunEnded",
    "RunExists",
    "RunFailed",
    "RunInput",
    "RunNotFound",
    "RunResult",
    "RunStatus",
    "SignalRefused",
    "StatusUnavailable",
    "StepResult",
    "TemplateError",
    "TemplateLimitError",
    "Usage",
    "UsageError",
    "ValidatorInput",
    "VariablesError",
    "WorkflowError",
    "YamlWorkflow",
    "json_schema",
    "load_definition",
    "resolve_variables",
]

_MODULES = {
    "contracts": (
        "ActionInput",
        "BudgetStatus",
        "ItemResult",
        "RunInput",
        "RunResult",
        "RunStatus",
        "StepResult",
        "Usage",
        "ValidatorInput",
    ),
    "definition": ("Definition", "json_schema"),
    "errors": (
        "ClientError",
        "DefinitionError",
        "LocalStackError",
        "Problem",
        "RunEnded",
        "RunExists",
        "RunFailed",
        "RunNotFound",
        "SignalRefused",
        "StatusUnavailable",
        "TemplateError",
        "UsageError",
        "VariablesError",
        "WorkflowError",
    ),
    "interpreter": ("YamlWorkflow",),
    "template_limits": ("TemplateLimitError",),
    "validation": ("load_definition", "resolve_variables"),
}
"""Where each public name lives, for the first use (tests/test_public_names.py keeps this,
`__all__` and the imports above in step)."""
if not TYPE_CHECKING:  # to a checker, a module `__getattr__` would make every name exist
    __getattr__ = lazy_names(__name__, _MODULES)
