"""A durabletask app for the multi-process tests (``--app tests.e2e.apps:register``)."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from typing import Any

from durabletask import task


def hello(ctx: task.ActivityContext, name: str) -> str:
    time.sleep(0.02)  # a little work, so orchestrations are in flight when a worker dies
    return f"Hello {name} from {os.environ.get('E2E_WORKER', '?')}"


def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    results = []
    for city in ("Tokyo", "Seattle", "London", "Cairo", "Lima"):
        results.append((yield ctx.call_activity(hello, input=city)))
    return results


def register(worker: Any) -> None:
    worker.add_orchestrator(hello_sequence)
    worker.add_activity(hello)
