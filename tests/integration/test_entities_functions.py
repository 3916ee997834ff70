"""azure-functions-durable entities on a real worker and Azurite (FunctionsEntityRuntime)."""

from __future__ import annotations

import json
from datetime import timedelta

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.runtimes.functions_entities import FunctionsEntityRuntime
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.integration.test_entities import caller
from tests.unit.test_entities_functions import Cart, counter


async def test_functions_entities_with_client_and_orchestrator(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    runtime = FunctionsEntityRuntime({"counter": counter, "cart": Cart})
    worker = Worker(storage_account, settings, entity_runtime=runtime)
    worker.add_orchestrator(caller)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        await client.signal_entity("cart", "add", "apple", key="c")
        await client.signal_entity("cart", "add", "pear", key="c")

        async def two_items() -> bool:
            return await client.read_entity_state("cart", key="c") == (True, {"items": ["apple", "pear"]})

        await eventually(two_items, message="class-based Functions entity state")
        # A durabletask orchestration calls the Functions counter (same wire format).
        instance_id = await client.schedule_new_orchestration("caller", input="fx")
        state = await client.wait_for_completion(instance_id, timeout=60)
        assert state.runtime_status == OrchestrationStatus.Completed, state.output
        output = json.loads(state.output or "null")
        assert output["first"] is None  # the 1.x "add" sets no result
        assert output["total"] == 15 and output["after"] == 15
        assert "bad op" in output["failed"]


async def test_both_entity_kinds_in_one_worker(storage_account: StorageAccount, task_hub_name: str) -> None:
    from durable_azstorage.runtimes.base import Registry
    from durable_azstorage.runtimes.entities import EntityRuntimeByName
    from durable_azstorage.runtimes.entities_durabletask import DurableTaskEntityRuntime
    from tests.integration.test_entities import Counter as SdkCounter

    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    registry = Registry()
    registry.add_entity(SdkCounter)
    routed = EntityRuntimeByName(
        {"cart": FunctionsEntityRuntime({"cart": Cart})}, default=DurableTaskEntityRuntime(registry)
    )
    worker = Worker(storage_account, settings, entity_runtime=routed)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await client.signal_entity("cart", "add", "fig", key="mixed")
        await client.signal_entity("counter", "add", 2, key="mixed")

        async def both() -> bool:
            cart = await client.read_entity_state("cart", key="mixed")
            count = await client.read_entity_state("counter", key="mixed")
            return cart == (True, {"items": ["fig"]}) and count == (True, 2)

        await eventually(both, timeout=60, message="both entity kinds answered")
