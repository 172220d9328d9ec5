"""SignalBuffer: signals a run received and has not used yet, by name, so one sent before its
step waits is not lost; what it keeps, drops and refuses (as signals or updates).

Signals no step waits for, payloads over MAX_SIGNAL_BYTES, payloads that do not decode or do
not fit the waiting step's outputs, and anything past MAX_BUFFERED_SIGNALS are dropped and
counted in the run's status. Each rule arrived with a patch: runs from before replay as
they ran."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import RunStatus
    from workflows.definition import Step, WaitForSignalStep
    from workflows.payloads import PayloadRefused
    from workflows.signal_payloads import payload_problems

SIGNAL_LIMITS_PATCH = "signal-limits"
SIGNAL_PAYLOAD_PATCH = "signal-payload-checks"
FAIR_SIGNAL_BUFFER_PATCH = "signal-buffer-fair-share"
EARLY_SIGNAL_CHECKS_PATCH = "signal-checks-before-definition"
"""A signal that arrived before the definition was known is checked against its step once
it is, as a later one is; runs from before accepted it unchecked and replay so."""
MAX_REJECTED_SHOWN = 20
MAX_BUFFERED_SIGNALS = 100
"""Signals received and not consumed yet, over all names; more are dropped and counted. When
the buffer is full, the name holding most gives up its latest to a name holding fewer."""
MAX_SIGNAL_BYTES = 32 * 1024
"""A bigger signal payload is dropped and counted."""


class SignalBuffer:
    def __init__(self, status: RunStatus) -> None:
        self.by_name: dict[str, list[Any]] = {}
        """The payloads of each name, oldest first (carried across continue-as-new)."""
        self.status = status
        """The run's status, where dropped and rejected signals are counted."""
        self.waiting_steps: dict[str, list[WaitForSignalStep]] = {}
        """The steps that wait for each signal name, once the definition is known."""
        self.known = False
        """Whether the definition is known (signals and updates may come before it)."""
        self._wanted: set[str] | None = None
        """Signal names the definition waits for, once it is known."""
        self._limits: bool | None = None
        self._checks: bool | None = None
        self._fair: bool | None = None

    def prepare(self, steps: Iterable[Step], carried: dict[str, list[Any]]) -> None:
        """The definition is known: signals carried from before continue-as-new go first,
        and (with limits) those of names no step waits for are dropped."""
        for name, earlier in carried.items():
            self.by_name[name] = earlier + self.by_name.get(name, [])
        for step in steps:
            if isinstance(step, WaitForSignalStep):
                self.waiting_steps.setdefault(step.signal, []).append(step)
        waited = set(self.waiting_steps)
        self.known = True
        self.status.awaited_signals = sorted(waited)
        if self._limits is None:
            self._limits = workflow.patched(SIGNAL_LIMITS_PATCH)
        if self._limits:
            self._wanted = waited
            for name in set(self.by_name) - self._wanted:
                self.status.dropped_signals += len(self.by_name.pop(name))
            early = {name: payloads for name, payloads in self.by_name.items() if payloads}
            if early and workflow.patched(EARLY_SIGNAL_CHECKS_PATCH):
                for name, payloads in early.items():
                    self.by_name[name] = [p for p in payloads if self._fits(name, p)]

    def _fits(self, name: str, payload: Any) -> bool:
        """Whether the payload fits the steps waiting for `name`; if not, it is counted and
        its problems shown in the run's status (the step keeps waiting)."""
        problems = payload_problems(self.waiting_steps.get(name, []), payload)
        if problems:
            self.status.dropped_signals += 1
            rejected = [*self.status.rejected_signals, f"{name}: {'; '.join(problems)}"]
            self.status.rejected_signals = rejected[-MAX_REJECTED_SHOWN:]
        return not problems

    def arrived(self, name: str) -> bool:
        return bool(self.by_name.get(name))

    def take(self, name: str) -> Any:
        """The oldest payload of `name` (there is one: see `arrived`)."""
        return self.by_name[name].pop(0)

    def waiting(self, running: Iterable[str]) -> dict[str, str]:
        """Each running step that waits for a signal, with the signal's name."""
        now = set(running)
        return {
            step.id: name
            for name, steps in self.waiting_steps.items()
            for step in steps
            if step.id in now
        }

    def receive(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal: kept, or dropped and counted."""
        if self._limits is None:
            self._limits = workflow.patched(SIGNAL_LIMITS_PATCH)
        if not self._limits:  # runs from before the limits replay as they ran
            payload = workflow.payload_converter().from_payload(args[0].payload) if args else {}
            self.by_name.setdefault(name, []).append(payload)
            return
        payload = self._accepted(name, args)
        if payload is None:
            self.status.dropped_signals += 1
            return
        if self._checks is None:
            self._checks = workflow.patched(SIGNAL_PAYLOAD_PATCH)
        if self._checks and not self._fits(name, payload):  # the step keeps waiting
            return
        if self._buffered() >= MAX_BUFFERED_SIGNALS:  # _accepted found it a fair share
            crowded = max(sorted(self.by_name), key=lambda n: len(self.by_name[n]))
            self.by_name[crowded].pop()
            self.status.dropped_signals += 1
        self.by_name.setdefault(name, []).append(payload)

    def accept(self, name: str, args: Sequence[RawValue]) -> str:
        """A step's signal sent as an update that `update_problem` let through: buffered
        as a signal would be."""
        self.by_name.setdefault(name, []).append(_decoded(args))
        steps = ", ".join(f"'{step.id}'" for step in self.waiting_steps.get(name, []))
        return f"accepted by step {steps}"

    def update_problem(self, name: str, args: Sequence[RawValue]) -> str | None:
        """Why an update for `name` is refused, or None."""
        if name not in self.waiting_steps:
            waits = ", ".join(repr(n) for n in sorted(self.waiting_steps)) or "no signal"
            return f"no step waits for {name!r} (the run waits for {waits})"
        if self._buffered() >= MAX_BUFFERED_SIGNALS:
            return f"the run holds {MAX_BUFFERED_SIGNALS} signals not used yet"
        if args and args[0].payload.ByteSize() > MAX_SIGNAL_BYTES:
            return f"the payload is over {MAX_SIGNAL_BYTES} bytes"
        try:
            payload = _decoded(args)
        except PayloadRefused as exc:  # too deep or too big (workflows/payloads.py)
            return f"the payload is refused: {exc.message}"
        except Exception:
            return "the payload does not decode"
        problems = payload_problems(self.waiting_steps[name], payload)
        return "; ".join(problems) or None

    def _buffered(self) -> int:
        return sum(len(buffered) for buffered in self.by_name.values())

    def _fair_share(self, name: str) -> bool:
        """Whether a signal may take the place of the latest one of the name holding most.
        Until the definition says which names a run waits for (signals can arrive before
        its first line runs), a flood of one stray name must not crowd out an approval.
        Runs from before this replay as they ran: the signal is dropped."""
        if self._fair is None:
            self._fair = workflow.patched(FAIR_SIGNAL_BUFFER_PATCH)
        most = max(len(buffered) for buffered in self.by_name.values())
        return self._fair and len(self.by_name.get(name, [])) + 1 < most

    def _accepted(self, name: str, args: Sequence[RawValue]) -> Any | None:
        if self._wanted is not None and name not in self._wanted:
            return None
        if self._buffered() >= MAX_BUFFERED_SIGNALS and not self._fair_share(name):
            return None
        if not args:
            return {}
        if args[0].payload.ByteSize() > MAX_SIGNAL_BYTES:
            return None
        try:
            return workflow.payload_converter().from_payload(args[0].payload)
        except Exception:  # not JSON, or an encoding this worker does not read
            return None


def _decoded(args: Sequence[RawValue]) -> Any:
    if not args:
        return {}
    return workflow.payload_converter().from_payload(args[0].payload)
