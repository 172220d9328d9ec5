"""Actions as activities: params checked against the action's model, secret slots filled here
(never in the workflow), errors and results redacted, and the attempt count reported back.

Custom actions are marked with ``@action(...)`` (activities/registry.py).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from activities.database import DatabaseActions
from activities.email import EmailActions
from activities.failures import with_attempt
from activities.files import FileActions
from activities.heartbeat import heartbeating
from activities.http import HttpActions
from activities.registry import ActionSpec
from activities.scripted import scripted_result
from activities.secrets import fill_slots, redact
from workflows.actions import (
    DatabaseInsertParams,
    HttpFetchParams,
    HttpPostParams,
    SaveToFileParams,
    SendEmailParams,
)
from workflows.contracts import VALIDATOR_PREFIX, ActionInput, ActionResult
from workflows.errors import FailureType


def action_activity(spec: ActionSpec, secrets: Mapping[str, str]) -> Callable[..., Any]:
    """The Temporal activity (named after the action) that runs one action."""

    @activity.defn(name=spec.name)
    async def run_action(request: ActionInput) -> ActionResult:
        try:
            return await _run(request)
        except ApplicationError as exc:
            activity.metric_meter().create_counter("action_failures", "failed attempts").add(
                1, {"action": spec.name, "type": exc.type or "error"}
            )
            raise

    async def _run(request: ActionInput) -> ActionResult:
        attempt = activity.info().attempt
        used: dict[str, str] = {}
        try:
            if request.scripted is not None:  # a test's stand-in for the action
                if not request.secrets:
                    spec.params.model_validate(request.params)
                return scripted_result(request, attempt)
            filled, used = fill_slots(request.params, request.secrets, secrets)
            params = spec.params.model_validate(filled)
            if inspect.iscoroutinefunction(spec.run):
                value = await heartbeating(spec.run(params, request))
            else:  # a sync function must not block the worker's event loop
                value = await heartbeating(asyncio.to_thread(spec.run, params, request))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'params'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ApplicationError(
                redact(f"{spec.name}: invalid params: {problems}", used),
                {"attempt": attempt},
                type=FailureType.INVALID_PARAMS,
                non_retryable=True,
            ) from None
        except ApplicationError as exc:
            raise with_attempt(exc, attempt, redact(exc.message, used)) from None
        except Exception as exc:
            message = f"{spec.name}: {type(exc).__name__}: {exc}"
            raise with_attempt(exc, attempt, redact(message, used)) from None
        return ActionResult(value=redact(value, used), attempt=attempt)

    return run_action


@activity.defn(dynamic=True)
async def unknown_action(args: Sequence[RawValue]) -> None:
    """Any activity type this worker does not run: an action or validator whose module is
    not in the worker's ACTION_MODULES. Retrying on the same queue cannot help, so it fails
    at once."""
    name = activity.info().activity_type
    kind, type_ = "action", FailureType.UNKNOWN_ACTION
    if name.startswith(VALIDATOR_PREFIX):
        name, kind = name.removeprefix(VALIDATOR_PREFIX), "validator"
        type_ = FailureType.UNKNOWN_VALIDATOR
    raise ApplicationError(
        f"no {kind} '{name}' is registered on this worker: list its module in the worker's "
        "ACTION_MODULES",
        {"attempt": activity.info().attempt},
        type=type_,
        non_retryable=True,
    )


def builtin_actions(
    http: HttpActions, files: FileActions, email: EmailActions, database: DatabaseActions
) -> dict[str, ActionSpec]:
    """The DSL's built-in actions; `sleep` is a timer inside the workflow, not an activity."""
    specs = [
        ActionSpec("http_fetch", HttpFetchParams, http.fetch),
        ActionSpec("http_post", HttpPostParams, http.post),
        ActionSpec("save_to_file", SaveToFileParams, files.save),
        ActionSpec("send_email", SendEmailParams, email.send),
        ActionSpec("database_insert", DatabaseInsertParams, database.insert),
    ]
    return {spec.name: spec for spec in specs}
