"""How a `wait_for_signal` step runs: it waits for its signal in the run's buffer and takes
the first one there (a durable wait; the run may continue as new while it waits)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.durations import parse_duration
    from workflows.step_results import Drained, Once, StepFailed
    from workflows.step_types.wait_for_signal import WaitForSignalStep

if TYPE_CHECKING:  # annotations only: steps.py dispatches to this module
    from workflows.steps import StepRunner

SIGNAL_WAIT_DRAINS_PATCH = "signal-wait-continues-as-new"


async def run(
    step: WaitForSignalStep, runner: StepRunner, context: dict[str, Any], key: str
) -> Once:
    timeout = parse_duration(step.timeout) if step.timeout is not None else None
    if runner.script is not None and runner.script.times_out(step.signal):
        raise StepFailed(  # the test's `timeout`: as if the wait's timeout had passed
            f"step '{step.id}': no '{step.signal}' signal within {step.timeout or 'its wait'}",
            0,
        )
    workflow.set_current_details(f"waiting for signal '{step.signal}' (step {step.id})")
    # A long wait while signals pile up grows the history: then the run continues as
    # new and the next run waits again. Runs from before this replay without it.
    may_drain = workflow.patched(SIGNAL_WAIT_DRAINS_PATCH)
    info = workflow.info()

    def arrived() -> bool:
        return runner.signals.arrived(step.signal)

    def may_go_on() -> bool:
        return arrived() or (may_drain and info.is_continue_as_new_suggested())

    try:
        while True:  # waits at least once even when the signal is here: the same commands
            await workflow.wait_condition(may_go_on, timeout=timeout)
            if arrived():
                break
            if runner.draining():
                raise Drained()
            may_drain = False  # not draining after all: wait for the signal alone
    except TimeoutError:
        raise StepFailed(
            f"step '{step.id}': no '{step.signal}' signal within {step.timeout}", 0
        ) from None
    payload = runner.signals.take(step.signal)
    return Once(payload if isinstance(payload, dict) else {"value": payload})
