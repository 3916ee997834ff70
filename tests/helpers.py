"""Polling with a deadline: the only way tests wait for something to happen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "condition not met",
) -> T:
    """Call ``probe`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout:.1f}s")
        await asyncio.sleep(interval)


def error_lines(stderr: str) -> list[str]:
    """A failed command's stderr without the ``using task hub … in storage account …`` line every verb
    prints first (docs/cli.md): what is left must be the one-line error."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("using task hub ")]
