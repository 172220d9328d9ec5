"""A no-op local activity: awaiting it ends the current workflow task at once (no server round
trip), so long stretches of in-workflow work stay under Temporal's deadlock limit."""

from __future__ import annotations

from temporalio import activity


@activity.defn(name="pace")
async def pace() -> None:
    return None
