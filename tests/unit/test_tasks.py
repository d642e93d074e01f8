"""Stopping background tasks never hangs on a task that swallows its cancellation."""

from __future__ import annotations

import asyncio

from vigil.adapters.tasks import stop_tasks


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as asyncio.wait_for in 3.11 can, once

    async def plain() -> None:
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(plain())]
    await asyncio.sleep(0)
    await stop_tasks(tasks, grace_seconds=0.01)
    assert swallowed == 1 and all(t.cancelled() for t in tasks)
