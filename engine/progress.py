"""The line a user sees while waiting for a run: steps done, what is running, tokens and cost
so far, printed again whenever it changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.client import EngineClient
    from engine.client_models import ExecutionStatus
    from workflows.contracts import BudgetStatus, RunResult, RunStatus, StepResult

PROGRESS_EVERY_SECONDS = 0.5
STREAM_EVERY_SECONDS = 0.2


async def with_progress(
    client: EngineClient,
    execution_id: str,
    note: Callable[[str], None],
    stream: Callable[[str], object] | None = None,
) -> RunResult:
    """Wait for the result, passing `note` a line whenever the run's status shows progress,
    and `stream` (when given) each piece of a reply as it arrives."""
    result = asyncio.ensure_future(client.result(execution_id))
    shown = ""
    pieces = StreamedPieces()
    every = STREAM_EVERY_SECONDS if stream is not None else PROGRESS_EVERY_SECONDS
    while not result.done():
        await asyncio.wait({result}, timeout=every)
        if result.done():
            break
        try:
            status = await client.status(execution_id)
        except Exception:  # progress is best effort; the result is not
            continue
        if stream is not None:
            new = pieces.new_text(status)
            if new:
                stream(new)
            elif pieces.mid_reply and not status.streaming:  # that reply is done
                stream(pieces.rest(status.steps) + "\n")
        line = progress_line(status)
        if line != shown and not pieces.mid_reply:
            note(line)
            shown = line
    if pieces.mid_reply and stream is not None and result.exception() is None:
        stream(pieces.rest(result.result().steps) + "\n")
    return result.result()


class StreamedPieces:
    """What of the replies streaming now has not been shown yet. Only one reply at a time
    is shown (several at once, a fan-out's, would be unreadable interleaved)."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}
        self.mid_reply = False
        self.step = ""
        """The step whose reply is being shown."""
        self.done = 0
        """How much of it has been shown."""

    def rest(self, steps: Mapping[str, StepResult]) -> str:
        """The end of the reply shown last, once its step has finished (the last pieces
        may come after the call's last heartbeat): its text output, past what was shown."""
        self.mid_reply = False
        outputs = steps[self.step].outputs if self.step in steps else None
        texts = [value for value in (outputs or {}).values() if isinstance(value, str)]
        return texts[0][self.done :] if len(texts) == 1 else ""

    def new_text(self, status: ExecutionStatus) -> str:
        if len(status.streaming) != 1:
            return ""
        piece = status.streaming[0]
        done = self.shown.get(piece.activity_id, 0)
        start = max(done, piece.offset)
        new = piece.text[start - piece.offset :]
        self.shown[piece.activity_id] = piece.offset + len(piece.text)
        if new:
            self.mid_reply, self.step, self.done = True, piece.step, self.shown[piece.activity_id]
        return new


def progress_line(status: RunStatus) -> str:
    done = len(status.steps)
    running = (
        ", ".join(
            f"{step_id} ({len(status.items[step_id])} items done)"
            if step_id in status.items
            else step_id
            for step_id in status.running
        )
        or "-"
    )
    paused = " (paused)" if status.paused else ""
    line = (
        f"[{done}/{status.total_steps} steps]{paused} running: {running}; tokens "
        f"{status.usage.input_tokens} in / {status.usage.output_tokens} out; "
        f"${status.usage.cost_usd:.6f}"
    )
    for scope, budget in status.budgets.items():
        line += f"; {scope} budget: {budget_text(budget)}"
        if budget.waiting:
            line += f" ({budget.waiting})"
    waits = sorted(set(getattr(status, "waiting_for", [])))  # an ExecutionStatus's
    if waits:
        line += "; " + ", ".join(waits)
    run_id = getattr(status, "execution_id", None) or "ID"  # an ExecutionStatus's
    for step_id, name in sorted(status.waiting_signals.items()):
        line += (
            f"; {step_id} waits for signal '{name}': "
            f"starter.py signal {run_id} {name} --input '{{...}}'"
        )
    return line


def budget_text(budget: BudgetStatus) -> str:
    """Spent against limit: `$0.0031 of $0.5, 1200 of 5000 tokens`."""
    from workflows.ledger import dollars

    parts = []
    if budget.max_cost_usd is not None:
        parts.append(f"{dollars(budget.spent_usd)} of {dollars(budget.max_cost_usd)}")
    if budget.max_tokens is not None:
        parts.append(f"{budget.spent_tokens} of {budget.max_tokens} tokens")
    return ", ".join(parts)
