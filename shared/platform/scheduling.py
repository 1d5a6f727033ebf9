"""Background loops of a service: a pass, then a pause, until the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def repeat(
    one_pass: Callable[[], Awaitable[int]],
    *,
    interval_s: float,
    name: str,
    full_batch: int | None = None,
) -> None:
    """Run `one_pass` forever. It returns how much it handled; a full batch runs again at once,
    anything less waits `interval_s`. A failing pass is logged and retried after the pause."""
    while True:
        try:
            handled = await one_pass()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s pass failed", name)
            handled = 0
        if full_batch is None or handled < full_batch:
            await asyncio.sleep(interval_s)
