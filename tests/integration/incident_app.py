"""An orchestration that fails in production, and versions of its code (export-history tests)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from durabletask import task


def reserve(ctx: task.ActivityContext, amount: int) -> str:
    return f"reservation-{amount}"


def charge(ctx: task.ActivityContext, reservation: str) -> str:
    raise RuntimeError(f"card declined for {reservation}")


def checkout(ctx: task.OrchestrationContext, amount: int) -> Generator[task.Task[Any], Any, str]:
    """The deployed code: a declined card fails the whole orchestration."""
    ctx.set_custom_status("charging")
    reservation = yield ctx.call_activity(reserve, input=amount)
    receipt: str = yield ctx.call_activity(charge, input=reservation)
    return receipt


def checkout_fixed(ctx: task.OrchestrationContext, amount: int) -> Generator[task.Task[Any], Any, str]:
    """The fix: a declined card releases the reservation instead of failing."""
    ctx.set_custom_status("charging")
    reservation = yield ctx.call_activity(reserve, input=amount)
    try:
        receipt: str = yield ctx.call_activity(charge, input=reservation)
    except task.TaskFailedError:
        yield ctx.call_activity("release", input=reservation)
        return "declined"
    return receipt


def checkout_reordered(ctx: task.OrchestrationContext, amount: int) -> Generator[task.Task[Any], Any, str]:
    """A careless change: charges before reserving (cannot replay recorded instances)."""
    receipt: str = yield ctx.call_activity(charge, input=str(amount))  # THE-CHANGED-LINE
    yield ctx.call_activity(reserve, input=amount)
    return receipt
