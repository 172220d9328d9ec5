"""A no-op local activity: awaiting it ends the current workflow task at once (no server round
trip), so long stretches of in-workflow work stay under Temporal's deadlock limit."""

from __future__ import annotations

from temporalio import activity

from workflows.contracts import PACE


@activity.defn(name=PACE)
async def pace() -> None:
    return None
