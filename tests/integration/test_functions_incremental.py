"""Through the real worker on storage: a Functions 1.x app with kept executors answers as full replays do.

The same app runs twice on the same storage endpoint, in two task hubs: once with the default
cache (the SDK's executor continued between episodes) and once with ``orchestrator_cache_size=0``
(the whole history replayed every episode, as the extension does). Outputs, custom status,
failures and the recorded histories (event types, ids, names, payloads) must be the same, and
the cache's counters must show that the first run really continued its executors.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from durable_azstorage.model import HistoryEvent, OrchestrationStatus
from durable_azstorage.runtimes.functions import FunctionsOrchestrationRuntime

APP = Path(__file__).parent / "functions_apps" / "long_chain"
STEPS = 40


def _shape(events: list[HistoryEvent]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """What must not differ between the two runs: the scheduled work in order, every event as a set.

    Clock stamps and generated ids may differ, and so may the order in which concurrent
    activities' completions arrive.
    """
    rows = [
        (type(e).__name__, e.event_id, _name(e), getattr(e, "result", None),
         getattr(e, "input", None) if type(e).__name__ in ("TaskScheduledEvent", "EventRaisedEvent") else None)
        for e in events
        if type(e).__name__ not in ("OrchestratorStartedEvent", "OrchestratorCompletedEvent")
    ]
    scheduled = [r for r in rows if r[0] in ("TaskScheduledEvent", "TimerCreatedEvent", "EventSentEvent",
                                             "SubOrchestrationInstanceCreatedEvent")]
    return scheduled, sorted(map(repr, rows))


def _name(event: HistoryEvent) -> str | None:
    """An entity's answer is raised under its request's id, a GUID derived from the execution id."""
    name: str | None = getattr(event, "name", None)
    try:
        uuid.UUID(name or "")
    except ValueError:
        return name
    return "<request id>"


async def _run(account: StorageAccount, cache_size: int) -> dict[str, Any]:
    hub = f"inc{uuid.uuid4().hex[:10]}"
    async with FunctionsHost.from_path(
        APP, account, task_hub_name=hub, port=0,
        max_queue_polling_interval=timedelta(seconds=1), orchestrator_cache_size=cache_size,
    ) as host:
        client = await TaskHubClient.open(account, hub)
        async with client:
            chain = await client.schedule_new_orchestration("chain", input=json.dumps(STEPS), instance_id="chain-1")
            await client.raise_event(chain, "Go", "go")  # buffered until the orchestrator waits for it
            eternal = await client.schedule_new_orchestration("eternal", input="0", instance_id="eternal-1")
            done = await client.wait_for_completion(chain, timeout=180)
            stopped = await client.wait_for_completion(eternal, timeout=60)
            history = await client.get_orchestration_history(chain)
        runtime = host.orchestration_runtime
        assert isinstance(runtime, FunctionsOrchestrationRuntime)
        sessions = runtime.sessions
        return {
            "status": (done.runtime_status, stopped.runtime_status),
            "output": json.loads(done.output or "null"),
            "custom": done.custom_status,
            "failure": (stopped.failure_details.error_message if stopped.failure_details else None, stopped.output),
            "shape": _shape(history),
            "counters": (sessions.hits, sessions.misses, len(sessions)),
        }


async def test_kept_executors_answer_as_full_replays_do(storage_account: StorageAccount) -> None:
    kept = await _run(storage_account, 1000)
    full = await _run(storage_account, 0)
    assert kept["status"] == (OrchestrationStatus.Completed, OrchestrationStatus.Failed), kept["failure"]
    squares = sum(i * i for i in range(STEPS))
    assert kept["output"] == [squares, sum(i * i for i in range(8)), "go", squares, [3, 2]]
    assert json.loads(kept["custom"]) == {"done": STEPS}
    assert "stopped at 2" in str(kept["failure"]), kept["failure"]
    for key in ("status", "output", "custom", "failure", "shape"):
        assert kept[key] == full[key], key
    hits, misses, kept_now = kept["counters"]
    # chain: 1 miss, then one hit per later episode (> STEPS); child: 1 miss; eternal: 1 per execution.
    assert hits > STEPS and misses <= 2 + 3 + 2, kept["counters"]  # +2: a reload after a lost race
    assert kept_now == 0  # every instance finished: nothing is kept
    assert full["counters"] == (0, 0, 0)
