"""The names of a run's states, once for every front door: what `status`, `list`, REST and
the event stream show, and what `list` and `GET /workflows?status=` filter by. Light on
purpose (no Temporal import), so the CLI's `--help` can offer them."""

from __future__ import annotations

from typing import Literal, get_args

ListedState = Literal["running", "completed", "failed", "cancelled", "terminated", "timed_out"]
"""The states a run can be listed by."""
ExecutionState = Literal[ListedState, "continued_as_new"]
"""Temporal's state of a run, in our words."""
RunState = Literal[ExecutionState, "unknown"]
"""What a front door shows: `unknown` when Temporal did not say."""

LISTED_STATES: tuple[ListedState, ...] = get_args(ListedState)
VISIBILITY_NAMES: dict[str, str] = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}
"""`list`'s status filter (Temporal's own spelling `canceled` too) to the names Temporal's
visibility queries use."""
FILTER_NAMES = list(VISIBILITY_NAMES)
"""What the CLI's `list --status` accepts."""
