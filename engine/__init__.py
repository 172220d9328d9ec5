"""The outside of a run: settings, the connection to Temporal, the local dev stack and the
client API that every front door (CLI, REST API, `WorkflowEngine`, users' programs) uses.

The public names below are imported on first use, so `import engine` stays cheap."""

from __future__ import annotations

from workflows.lazy_names import lazy_names

TYPE_CHECKING = False  # typing's own flag costs an import; type checkers read this one alike
if TYPE_CHECKING:
    from engine.client import EngineClient
    from engine.client_models import (
        Execution,
        ExecutionStatus,
        Rerun,
        Signalled,
        Started,
        StreamedText,
    )
    from engine.connection import connect
    from engine.rest import create_app
    from engine.rest_auth import ApiConfig
    from engine.settings import Settings

__all__ = [
    "ApiConfig",
    "EngineClient",
    "Execution",
    "ExecutionStatus",
    "Rerun",
    "Settings",
    "Signalled",
    "Started",
    "StreamedText",
    "connect",
    "create_app",
]

_MODULES = {
    "client": ("EngineClient",),
    "client_models": (
        "Execution",
        "ExecutionStatus",
        "Rerun",
        "Signalled",
        "Started",
        "StreamedText",
    ),
    "connection": ("connect",),
    "rest": ("create_app",),
    "rest_auth": ("ApiConfig",),
    "settings": ("Settings",),
}
"""Where each public name lives, for the first use (tests/test_public_names.py keeps this,
`__all__` and the imports above in step)."""
if not TYPE_CHECKING:  # to a checker, a module `__getattr__` would make every name exist
    __getattr__ = lazy_names(__name__, _MODULES)
