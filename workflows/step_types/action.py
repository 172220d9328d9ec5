"""The `action` step type: a built-in or custom action, run as an activity (sleep: a durable
timer). How it runs: action_run.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from workflows.definition_parts import StepFields
from workflows.suggest import suggest

if TYPE_CHECKING:  # annotations only: checks.py reads the step types
    from workflows.checks import Checker
    from workflows.source import Path


class ActionStep(StepFields):
    """A built-in or custom action, run as an activity (sleep: a durable timer)."""

    type: Literal["action"] = Field(description="action: run a registered action.")
    action: str = Field(
        description="http_fetch, http_post, send_email, save_to_file, database_insert, sleep, "
        "or a custom action the worker registers."
    )
    params: dict[str, Any] = Field(
        default={},
        description="The action's params (templates); secrets only here, as "
        "{{ secrets.NAME }} standing alone in its braces.",
    )

    def may_wait_long(self) -> bool:
        return self.action == "sleep"

    @classmethod
    def cross_check(cls, checker: Checker, path: Path, raw: dict[str, Any]) -> None:
        check_action(checker, path, raw)

    @classmethod
    def secrets_allowed(cls, raw: dict[str, Any], where: Path) -> bool:
        """An action's params, except sleep's (a timer, not an activity)."""
        in_params = where[0] == "params" and raw.get("action") != "sleep"
        return in_params or super().secrets_allowed(raw, where)


def check_action(checker: Checker, path: Path, raw: dict[str, Any], as_tool: bool = False) -> None:
    """The action exists and its params fit; a tool's required params are the model's."""
    name = raw.get("action")
    if not isinstance(name, str):
        return
    params_model = checker.actions.get(name)
    if params_model is None:
        message = f"unknown action '{name}'" + suggest(name, set(checker.actions))
        known = ", ".join(sorted(checker.actions))
        hint = "; a custom action is found only when its module is named in ACTION_MODULES"
        checker.add((*path, "action"), f"{message} (actions: {known}{hint})")
        return
    params = raw.get("params")
    params = params if isinstance(params, dict) else {}
    fields = {info.alias or key: info for key, info in params_model.model_fields.items()}
    open_params = params_model.model_config.get("extra") == "allow"  # any params go
    for key in params:
        if key not in fields and not open_params:
            message = f"unknown param '{key}' for action {name}" + suggest(str(key), set(fields))
            checker.add((*path, "params", key), message, at_key=True)
    for key, info in fields.items():
        if info.is_required() and key not in params and not as_tool:
            checker.add((*path, "params"), f"action {name} needs param '{key}'")
