"""Everything that touches the world: LLM providers, definition files, actions.

The public names are what a module of custom actions and validators needs (see
activities/example_actions.py); they are imported on first use."""

from __future__ import annotations

from workflows.lazy_names import lazy_names

TYPE_CHECKING = False  # typing's own flag costs an import; type checkers read this one alike
if TYPE_CHECKING:
    from activities.registry import ActionSpec, ValidatorSpec, action, validator, validator_spec

__all__ = ["ActionSpec", "ValidatorSpec", "action", "validator", "validator_spec"]

_MODULES = {"registry": ("ActionSpec", "ValidatorSpec", "action", "validator", "validator_spec")}
"""Where each public name lives, for the first use (tests/test_public_names.py keeps this,
`__all__` and the imports above in step)."""
if not TYPE_CHECKING:  # to a checker, a module `__getattr__` would make every name exist
    __getattr__ = lazy_names(__name__, _MODULES)
