"""Validators as activities: user code that judges an llm_call's outputs runs here, never in
the workflow. An exception is an error (Temporal retries it); ``(False, errors)`` is an
answer, and the workflow re-asks the model with the errors.

Validators are marked with ``@validator(...)`` (activities/registry.py).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.failures import with_attempt
from activities.registry import ValidatorFunction
from workflows.contracts import VALIDATOR_PREFIX, ValidatorInput, ValidatorResult
from workflows.errors import FailureType


def validator_activity(name: str, handler: ValidatorFunction) -> Callable[..., Any]:
    """The Temporal activity (`validator.<name>`) that runs one validator."""

    @activity.defn(name=VALIDATOR_PREFIX + name)
    async def run_validator(request: ValidatorInput) -> ValidatorResult:
        attempt = activity.info().attempt
        try:
            if _is_async(handler):
                answer = await handler(request.outputs)
            else:  # a sync function must not block the worker's event loop
                answer = await asyncio.to_thread(handler, request.outputs)
                if inspect.isawaitable(answer):
                    answer = await answer
        except ApplicationError as exc:  # the validator's own: keep its type and retry hints
            raise with_attempt(exc, attempt, exc.message) from None
        except Exception as exc:
            raise with_attempt(exc, attempt, f"{type(exc).__name__}: {exc}") from None
        return _result(name, answer, attempt)

    return run_validator


def _is_async(handler: ValidatorFunction) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


def _result(name: str, answer: Any, attempt: int) -> ValidatorResult:
    """`(is_valid, errors)`; errors may be one text. Anything else is the validator's bug,
    which no retry mends."""
    if isinstance(answer, tuple | list) and len(answer) == 2 and isinstance(answer[0], bool):
        valid, errors = answer
        if errors is None:
            errors = []
        elif isinstance(errors, str):
            errors = [errors]
        if isinstance(errors, list | tuple):
            return ValidatorResult(valid=valid, errors=[str(error) for error in errors])
    raise ApplicationError(
        f"validator '{name}' returned {_short(answer)}: it must return (is_valid, errors), "
        "a bool and a list of strings",
        {"attempt": attempt},
        type=FailureType.INVALID_VALIDATOR_RESULT,
        non_retryable=True,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."
