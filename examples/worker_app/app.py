"""A durabletask-SDK app for the container image: ``durable-azstorage worker --app app:register``.

Mount this folder at /app (``-v "$PWD/examples/worker_app:/app:ro"``) or copy it in. Each activity
returns the host that ran it, so a run over several containers shows the work spread.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Generator
from typing import Any

from durabletask import task


def hello(ctx: task.ActivityContext, name: str) -> str:
    host = os.environ.get("WORKER_NAME") or socket.gethostname()
    return f"Hello {name} from {host}"


def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    results = []
    for city in ("Tokyo", "Seattle", "London", "Cairo", "Lima"):
        results.append((yield ctx.call_activity(hello, input=city)))
    return results


def register(worker: Any) -> None:
    """Called by ``durable-azstorage worker --app app:register`` with the Worker to fill."""
    worker.add_orchestrator(hello_sequence)
    worker.add_activity(hello)
