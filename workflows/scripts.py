"""Scripted replies: what a test (or `run --replies`) makes each model call and action answer.

The script travels in the run's input, so history shows exactly what a test fed the run;
the workflow hands each call the entries that are its own (by step, for_each item and call
order) and the worker answers from them (activities/scripted.py). A run without a script
runs none of this.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

SCRIPT_PATCH = "scripted-replies"
"""Marks runs that follow a script; runs from before scripts never take this path."""


class ScriptedToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] = {}


class Scripted(BaseModel):
    """One scripted answer: a reply's text or structured output, tool calls, an action's
    result, or an error (an HTTP status like 429, "timeout", or an action's message)."""

    value: Any = None
    tool_calls: list[ScriptedToolCall] = Field(default=[], exclude_if=lambda value: not value)
    error: int | str | None = Field(default=None, exclude_if=lambda value: value is None)


class StepScript(BaseModel):
    """A step's answers: one for every call, or a sequence per for_each item (one sequence,
    at index 0, for a step without for_each)."""

    every: Scripted | None = None
    by_item: list[list[Scripted]] = []


class Script(BaseModel):
    replies: dict[str, StepScript] = {}
    """Model calls by step id (a tool-calling step's turns included)."""
    actions: dict[str, StepScript] = {}
    """Action results by step id; an llm_call's id scripts the actions its tools run."""
    timeouts: dict[str, list[int]] = {}
    """By signal name: which waits for it (0 for the first) time out at once."""


class ScriptPlayer:
    """The workflow's place in its script: how many entries each step and item has used."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._used: dict[tuple[str, str, str], int] = {}
        """Entries used by kind ("replies", "actions"), step and key: a tool-calling step
        uses both kinds under one id."""
        self._waits: dict[str, int] = {}

    def replies(self, step_id: str, key: str) -> list[Scripted] | None:
        """The entries for the next model call of `key` (None: the step is not scripted):
        one per attempt, up to the first that is not an error."""
        entries = self._remaining("replies", step_id, key)
        if entries is None:
            return None
        for end, entry in enumerate(entries, 1):
            if entry.error is None:
                return entries[:end]
        return entries

    def used(self, step_id: str, key: str, attempts: int, kind: str = "replies") -> None:
        """The call of `key` is over after `attempts` attempts."""
        self._used[(kind, step_id, key)] = self._used.get((kind, step_id, key), 0) + attempts

    def action(self, step_id: str, key: str) -> list[Scripted] | None:
        """The entry for the next action call of `key` (every attempt gets it): a list of
        one, empty when the script has run out, None when the step is not scripted."""
        entries = self._remaining("actions", step_id, key)
        if entries is None:
            return None
        self.used(step_id, key, 1, "actions")
        return entries[:1]

    def times_out(self, signal: str) -> bool:
        """Whether this wait for `signal` is to time out at once."""
        index = self._waits.get(signal, 0)
        self._waits[signal] = index + 1
        return index in self.script.timeouts.get(signal, [])

    def _remaining(self, kind: str, step_id: str, key: str) -> list[Scripted] | None:
        steps: dict[str, StepScript] = getattr(self.script, kind)
        step = steps.get(step_id)
        if step is None:
            return None
        if step.every is not None:
            return [step.every]
        item = item_of(step_id, key)
        if item >= len(step.by_item):
            return []
        return step.by_item[item][self._used.get((kind, step_id, key), 0) :]


def item_of(step_id: str, key: str) -> int:
    """The for_each item a key names (`step/3` is item 3; a plain step is item 0)."""
    rest = key.removeprefix(step_id).lstrip("/").split("/", 1)[0]
    return int(rest) if rest.isdigit() else 0
