"""Heartbeats while a long call runs, so a cancelled run (or a lost worker) reaches the activity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
HEARTBEAT_EVERY_SECONDS = 5.0


async def heartbeating(awaitable: Awaitable[T], every: float = HEARTBEAT_EVERY_SECONDS) -> T:
    """Await `awaitable`, heartbeating meanwhile; a cancellation cancels the call too."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
