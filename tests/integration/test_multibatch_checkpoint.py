"""Issue 14 defect 9: a checkpoint spanning several table batches survives a crash at any batch.

A ContinueAsNew's new generation rewrites the history from RowKey 0, so once its first batch is
in, the old generation is gone; a crash before the last batch used to leave neither generation
whole. The checkpoint now writes its rows to an intent blob first; the next load finishes it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import (
    EventType,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    TaskScheduledEvent,
)
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from durable_azstorage.storage.history_store import HistoryStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


class Crash(Exception):
    """The process died here."""


def _generation(instance_id: str, execution_id: str, tasks: int) -> list[HistoryEvent]:
    return [
        OrchestratorStartedEvent(timestamp=NOW),
        ExecutionStartedEvent(
            orchestration_instance=OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
            name="fan_out", input='{"n": 1}', timestamp=NOW,
        ),
        *(TaskScheduledEvent(event_id=i, name="work", input=str(i), timestamp=NOW) for i in range(tasks)),
        OrchestratorCompletedEvent(timestamp=NOW),
    ]


@pytest.mark.parametrize(("tasks", "crash_after_batches"), [(150, 0), (150, 1), (250, 1), (250, 2)])
async def test_new_generation_is_recovered_after_a_crash_between_batches(
    storage_account: StorageAccount, task_hub_name: str, tasks: int, crash_after_batches: int
) -> None:
    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    async with TaskHubStorage(storage_account, names) as hub:
        history: HistoryStore = hub.history
        old = _generation("i", "gen-a", 2)
        etag = await history.checkpoint("i", "gen-a", all_event_count=len(old), new_events=old, etag=None, now=NOW)
        new = _generation("i", "gen-b", tasks)
        real_commit = history._commit_batch
        committed = 0

        async def commit_then_crash(*args: Any, **kwargs: Any) -> str:
            nonlocal committed
            if committed == crash_after_batches:
                raise Crash
            committed += 1
            return await real_commit(*args, **kwargs)

        history._commit_batch = commit_then_crash  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await history.checkpoint("i", "gen-b", all_event_count=len(new), new_events=new, etag=etag, now=NOW)
        history._commit_batch = real_commit  # type: ignore[method-assign]

        loaded = await history.load("i")
        if crash_after_batches == 0:
            # Nothing of the new generation was written: the old one is intact.
            assert loaded.execution_id == "gen-a" and len(loaded.events) == len(old)
            assert loaded.is_checkpoint_complete is True
            return
        assert loaded.execution_id == "gen-b"
        assert loaded.is_checkpoint_complete is True
        assert len(loaded.events) == len(new)
        assert [e.event_type for e in loaded.events][-1] == EventType.OrchestratorCompleted
        scheduled = sorted(e.event_id for e in loaded.events if e.event_type == EventType.TaskScheduled)
        assert scheduled == list(range(tasks))
        container = hub.blob_service.get_container_client(names.large_messages_container)
        assert [b.name async for b in container.list_blobs() if "checkpoint" in b.name] == []
