"""The worker's side of scripted replies (workflows/scripts.py): a call that carries its
script is answered from it, by attempt, instead of by a provider or the real action. Errors
are raised as the provider SDK raises them, so they are sorted, retried and fallen back from
exactly as in production."""

from __future__ import annotations

import json

import httpx2
import openai
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers import Completion, OnText, conversation
from workflows.contracts import ActionInput, ActionResult, LlmCallInput, ToolCall, Usage
from workflows.errors import FailureType
from workflows.scripts import Scripted

_URL = "https://scripted.invalid/"


class ScriptedProvider:
    """Answers a call with the scripted entry of its attempt; no network, no key."""

    async def complete(self, call: LlmCallInput, on_text: OnText | None = None) -> Completion:
        attempt = activity.info().attempt
        entry = _entry(call.scripted or [], attempt, f"a model call of step '{call.step_id}'")
        if entry.error is not None:
            raise _provider_error(entry.error)
        text = entry.value if isinstance(entry.value, str) else ""
        if entry.value is not None and not isinstance(entry.value, str):
            text = json.dumps(entry.value)
        calls = [
            ToolCall(id=f"scripted-{attempt}-{n}", name=called.name, arguments=called.arguments)
            for n, called in enumerate(entry.tool_calls, 1)
        ]
        if on_text is not None and text and not calls:
            on_text(text)
        prompt = [m["content"] for m in conversation(call)] + [call.system or ""]
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=sum(len(part.split()) for part in prompt),
                output_tokens=len(text.split()) + len(calls),
            ),
            finish_reason="tool_calls" if calls else "stop",
            tool_calls=calls,
        )


def scripted_result(request: ActionInput, attempt: int) -> ActionResult:
    """What stands in for running the action: the scripted result, or its error."""
    what = f"action {request.action} of step '{request.step_id}'"
    entry = _entry(request.scripted or [], 1, what)
    if entry.error is not None:
        raise ApplicationError(
            f"{request.action}: {entry.error}",
            {"attempt": attempt},
            type=FailureType.SCRIPTED_ERROR,
            non_retryable=True,
        )
    return ActionResult(value=entry.value, attempt=attempt)


def _entry(entries: list[Scripted], attempt: int, what: str) -> Scripted:
    if attempt > len(entries):
        raise ApplicationError(
            f"no scripted answer for {what} (attempt {attempt}): the script ran out; "
            "the case must give one for every call",
            {"attempt": attempt},
            type=FailureType.SCRIPT_MISSING,
            non_retryable=True,
        )
    return entries[attempt - 1]


def _provider_error(error: int | str) -> Exception:
    """The SDK's own error for a scripted failure: an HTTP status, or `timeout`."""
    request = httpx2.Request("POST", _URL)
    if error == "timeout":
        return openai.APITimeoutError(request=request)
    if isinstance(error, int):
        body = {"error": {"message": f"scripted error {error}"}}
        response = httpx2.Response(error, request=request, json=body)
        return openai.APIStatusError(f"scripted error {error}", response=response, body=body)
    return openai.APIError(str(error), request, body=None)
