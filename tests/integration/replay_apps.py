"""replay-check tests: versions of one durabletask app (``--app tests.integration.replay_apps:...``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from durabletask import task


def reserve(ctx: task.ActivityContext, item: str) -> str:
    return f"reserved {item}"


def charge(ctx: task.ActivityContext, item: str) -> str:
    return f"charged {item}"


def order_v1(ctx: task.OrchestrationContext, item: str) -> Generator[task.Task[Any], Any, str]:
    reserved = yield ctx.call_activity(reserve, input=item)
    yield ctx.wait_for_external_event("approve")
    charged: str = yield ctx.call_activity(charge, input=reserved)
    return charged


def order_changed_after_the_wait(ctx: task.OrchestrationContext, item: str) -> Generator[task.Task[Any], Any, str]:
    reserved = yield ctx.call_activity(reserve, input=item)
    yield ctx.wait_for_external_event("approve")
    yield ctx.call_activity(charge, input="fee")  # new step after where running instances wait: safe
    charged: str = yield ctx.call_activity(charge, input=reserved)
    return charged


def order_changed_before_the_wait(ctx: task.OrchestrationContext, item: str) -> Generator[task.Task[Any], Any, str]:
    reserved = yield ctx.call_activity(charge, input=item)  # LINE-OF-THE-CHANGE
    yield ctx.wait_for_external_event("approve")
    charged: str = yield ctx.call_activity(charge, input=reserved)
    return charged


def order_raising(ctx: task.OrchestrationContext, item: str) -> Generator[task.Task[Any], Any, str]:
    reserved = yield ctx.call_activity(reserve, input=item)
    raise KeyError(f"config for {reserved}")


def _register(worker: Any, order: Any) -> None:
    worker.add_orchestrator(order, name="order")
    worker.add_activity(reserve)
    worker.add_activity(charge)


def v1(worker: Any) -> None:
    _register(worker, order_v1)


def safe(worker: Any) -> None:
    _register(worker, order_changed_after_the_wait)


def breaking(worker: Any) -> None:
    _register(worker, order_changed_before_the_wait)


def raising(worker: Any) -> None:
    _register(worker, order_raising)


def renamed(worker: Any) -> None:
    worker.add_orchestrator(order_v1, name="order2")
