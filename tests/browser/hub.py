"""A task hub populated by real orchestrations, for the dashboard's browser tests and screenshots.

Everything runs in-process on one event loop: a worker (durabletask SDK functions below), the
dashboard server (``serve_dashboard``, as ``durable-azstorage dashboard`` runs it) and the
client that starts the orchestrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from durabletask import entities, task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.queue_codec import MessageData, prepare_queue_message
from durable_azstorage.connection import StorageAccount
from durable_azstorage.dashboard import serve_dashboard
from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, OrchestrationStatus, TaskMessage
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage.queues import next_sequence_number
from durable_azstorage.worker import Worker
from tests.helpers import eventually

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium (``./dev.sh test`` installs it); never a browser Playwright downloads."""
    path = os.environ.get("DURABLE_AZSTORAGE_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError("Chromium is not installed: run ./dev.sh test (it installs Debian's chromium) "
                           "or set DURABLE_AZSTORAGE_CHROMIUM to a Chromium binary")
    return path


# --------------------------------------------------------------------------- user code


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


_EXPLODED: set[str] = set()


def explode(ctx: task.ActivityContext, key: str) -> str:
    """Fails the first time for each key: a rewind then completes the orchestration."""
    if key not in _EXPLODED:
        _EXPLODED.add(key)
        raise ValueError("the payment service said no")
    return f"paid {key}"


def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    out = []
    for city in ("Tokyo", "Seattle", "London"):
        out.append((yield ctx.call_activity(greet, input=city)))
    return out


def parent_flow(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    child = yield ctx.call_sub_orchestrator(hello_sequence, instance_id=f"{ctx.instance_id}-child")
    yield ctx.create_timer(timedelta(seconds=1))
    return {"child": child}


def approval(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    yield ctx.call_activity(greet, input="approver")
    decision = yield ctx.wait_for_external_event("approve")
    return {"approved": decision}


def failing(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    yield ctx.call_activity(greet, input="before")
    return (yield ctx.call_activity(explode, input=ctx.instance_id))


class Counter(entities.DurableEntity):
    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value


@dataclass
class PopulatedHub:
    url: str
    client: TaskHubClient
    worker: Worker
    ids: dict[str, str] = field(default_factory=dict)


async def wait_status(client: TaskHubClient, instance_id: str, *statuses: OrchestrationStatus,
                      timeout: float = 60) -> None:
    async def probe() -> bool:
        state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
        return state is not None and state.runtime_status in statuses

    await eventually(probe, timeout=timeout, interval=0.2, message=f"{instance_id} in {statuses}")


async def quarantine_event(client: TaskHubClient, instance_id: str, event: str, data: str) -> str:
    """Set aside a valid event message as the worker's poison handler does; returns its message id."""
    hub = client._hub
    message = MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(event=EventRaisedEvent(name=event, input=data),
                                 orchestration_instance=OrchestrationInstance(instance_id=instance_id)),
        sequence_number=next_sequence_number(),
        sender=OrchestrationInstance(instance_id="", execution_id=""),
    )
    body, _blob = prepare_queue_message(message)
    message_id = str(uuid.uuid4())
    await hub.poison.quarantine(
        queue_name=hub.names.control_queue_for(instance_id), message_id=message_id, body=body,
        reason="handler failed 5 times (set aside by the test)", dequeue_count=5,
        instance_id=instance_id, event_type="EventRaised",
    )
    return message_id


@contextlib.asynccontextmanager
async def populated_hub(account: StorageAccount, task_hub_name: str) -> AsyncIterator[PopulatedHub]:
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    worker = Worker(account, settings)
    for fn in (hello_sequence, parent_flow, approval, failing):
        worker.add_orchestrator(fn)
    for activity in (greet, explode):
        worker.add_activity(activity)
    worker.add_entity(Counter)
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    async with worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        server = asyncio.create_task(serve_dashboard(account, task_hub_name, port=0, stop=stop, started=started))
        url = await asyncio.wait_for(started, 30)
        try:
            async with await TaskHubClient.open(account, task_hub_name) as client:
                hub = PopulatedHub(url.rstrip("/"), client, worker)
                await _start_all(hub)
                yield hub
        finally:
            stop.set()
            await server


async def _start_all(hub: PopulatedHub) -> None:
    c = hub.client
    ids = hub.ids
    for n in range(3):
        ids[f"sequence{n}"] = await c.schedule_new_orchestration("hello_sequence", instance_id=f"seq-{n}")
    ids["parent"] = await c.schedule_new_orchestration("parent_flow", instance_id="order-parent")
    ids["approval"] = await c.schedule_new_orchestration("approval", instance_id="approval-1")
    ids["approval2"] = await c.schedule_new_orchestration("approval", instance_id="approval-2")
    ids["doomed"] = await c.schedule_new_orchestration("approval", instance_id="doomed-1")
    ids["failing"] = await c.schedule_new_orchestration("failing", instance_id="failing-1")
    await c.signal_entity("counter", "add", 5, key="c1")
    for key in ("sequence0", "sequence1", "sequence2", "parent"):
        await wait_status(c, ids[key], OrchestrationStatus.Completed)
    await wait_status(c, ids["failing"], OrchestrationStatus.Failed)
    for key in ("approval", "approval2", "doomed"):
        await wait_status(c, ids[key], OrchestrationStatus.Running)

    async def counted() -> bool:
        entity = await c.get_entity("counter", key="c1")
        return entity is not None and entity.state_value() == 5

    await eventually(counted, timeout=60, interval=0.2, message="counter @c1 == 5")
    ids["poison"] = await quarantine_event(c, ids["approval2"], "approve", '"from the poison table"')
