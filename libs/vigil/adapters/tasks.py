"""Stopping a service's background tasks for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

__all__ = ["stop_tasks"]

log = logging.getLogger(__name__)


async def stop_tasks(tasks: Sequence[asyncio.Task[Any]], grace_seconds: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    A task can swallow a cancellation (in Python 3.11, ``asyncio.wait_for`` does when its inner
    future completes at the moment it is cancelled; some client libraries do too) and run on:
    one that is still running after ``grace_seconds`` is cancelled again, so shutting down never
    hangs on it. A task that ended with an error is logged.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace_seconds)
        for task in pending:
            log.warning("task %s ignored its cancellation; cancelling it again", task.get_name())
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s had failed", task.get_name(), exc_info=task.exception())
