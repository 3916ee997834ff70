"""Issue 14 defect 3: storage trouble never makes a message poison; real poison is visible.

A message that fails because the *account* is in trouble (503, time-outs, eTag races) backs off
and retries without counting toward the threshold; a message that fails on its own is
quarantined at the threshold, its instance shows ``Failed`` with a ``PoisonMessage`` output that
says how to requeue it, and ``poison list`` lists it. Requeueing continues the instance.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceResponseError

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import ExecutionStartedEvent, OrchestrationStatus
from durable_azstorage.runtimes.base import EpisodeRequest, EpisodeResult, Registry
from durable_azstorage.runtimes.durabletask import DurableTaskOrchestrationRuntime
from tests.helpers import eventually
from tests.integration.test_worker_semantics import ORCHESTRATORS, running


def _unavailable() -> HttpResponseError:
    error = HttpResponseError(message="The server is busy.")
    error.status_code = 503
    return error


class TroubleFor:
    """Fails the first ``times`` episodes of one orchestration with ``make_error()``."""

    def __init__(self, name: str, times: int, make_error: Any) -> None:
        registry = Registry()
        for fn in ORCHESTRATORS:
            registry.add_orchestrator(fn)
        self._inner = DurableTaskOrchestrationRuntime(registry)
        self._name = name
        self._left = times
        self._make_error = make_error
        self.failures = 0
        self.healed = False

    def heal(self) -> None:
        self.healed = True

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        events = [*request.past_events, *request.new_events]
        started = next((e for e in events if isinstance(e, ExecutionStartedEvent)), None)
        if started is not None and started.name == self._name and not self.healed and self._left > 0:
            self._left -= 1
            self.failures += 1
            raise self._make_error()
        return await self._inner.run_episode(request)


async def test_storage_trouble_past_the_threshold_is_retried_not_quarantined(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    errors = iter([_unavailable(), ServiceResponseError("connection reset by peer"), _unavailable(), _unavailable()])
    runtime = TroubleFor("hello_sequence", 4, lambda: next(errors))
    async with running(storage_account, task_hub_name, orchestration_runtime=runtime, poison_dequeue_threshold=2) as (
        _,
        client,
    ):
        instance_id = await client.schedule_new_orchestration("hello_sequence")
        state = await client.wait_for_completion(instance_id, timeout=90)
        assert state is not None and state.runtime_status == OrchestrationStatus.Completed
        assert await client.list_poison_messages() == []
    assert runtime.failures == 4  # twice the threshold, and still nothing quarantined


async def test_poison_orchestration_message_shows_on_the_instance_and_in_poison_list(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    runtime = TroubleFor("hello_sequence", 100, lambda: RuntimeError("orchestration runtime crashed"))
    async with running(storage_account, task_hub_name, orchestration_runtime=runtime, poison_dequeue_threshold=2) as (
        _,
        client,
    ):
        instance_id = await client.schedule_new_orchestration("hello_sequence")
        queue_name = TaskHubNames(task_hub_name).control_queue_for(instance_id)

        async def failed() -> Any:
            state = await client.get_orchestration_state(instance_id)
            return state if state is not None and state.runtime_status == OrchestrationStatus.Failed else None

        state = await eventually(failed, timeout=30, message="instance marked Failed by the quarantine")
        assert state.output is not None and state.output.startswith("PoisonMessage: ")
        assert "episode failed repeatedly" in state.output
        assert f"poison requeue --queue {queue_name}" in state.output
        records = await client.list_poison_messages()
        assert [(r.instance_id, r.event_type) for r in records] == [(instance_id, "ExecutionStarted")]
        assert records[0].message_id in state.output
        assert runtime.failures == 2

        runtime.heal()
        assert await client.release_poison_message(queue_name, records[0].message_id, requeue=True)

        async def completed() -> bool:
            state = await client.get_orchestration_state(instance_id)
            return state is not None and state.runtime_status == OrchestrationStatus.Completed

        await eventually(completed, timeout=60, message="requeued instance completed")
