"""Abandon and a dropped stream give work to another worker without touching storage (no
dequeue counted toward poison), and an idle stream gets health pings."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Generator
from queue import Queue
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask import task

from durable_azstorage.connection import StorageAccount
from durable_azstorage.sidecar._proto import pb, pb_grpc
from tests.sidecar_support import SidecarThread, fast_settings, sdk_worker

pytestmark = pytest.mark.integration


def shout(ctx: task.ActivityContext, text: str) -> str:
    return text.upper()


def loud(ctx: task.OrchestrationContext, text: str) -> Generator[task.Task[Any], Any, str]:
    return (yield ctx.call_activity(shout, input=text))


def register(worker: Any) -> None:
    worker.add_orchestrator(loud)
    worker.add_activity(shout)


class RawWorker:
    """A bare GetWorkItems stream: collects work items in a queue until cancelled."""

    def __init__(self, address: str, **limits: int) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.TaskHubSidecarServiceStub(self.channel)
        self.stream = self.stub.GetWorkItems(pb.GetWorkItemsRequest(**limits))
        self.items: Queue[Any] = Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for item in self.stream:
                self.items.put(item)
        except grpc.RpcError:
            pass

    def next(self, kind: str, timeout: float = 30) -> Any:
        while True:
            item = self.items.get(timeout=timeout)
            if item.HasField(kind):
                return item

    def close(self) -> None:
        self.stream.cancel()
        self.channel.close()


def test_abandoned_and_dropped_work_goes_to_the_next_worker(storage_account: StorageAccount) -> None:
    hub = "ab" + uuid.uuid4().hex[:12]
    with SidecarThread(storage_account, fast_settings(hub)) as sidecar:
        client = dt_client.TaskHubGrpcClient(host_address=sidecar.address)
        raw = RawWorker(sidecar.address)
        try:
            instance_id = client.schedule_new_orchestration(loud, input="hi")
            # The raw worker takes the episode, then its stream drops without answering.
            first = raw.next("orchestratorRequest")
            assert first.orchestratorRequest.instanceId == instance_id and first.completionToken
            raw.close()
            raw = RawWorker(sidecar.address)
            again = raw.next("orchestratorRequest")
            assert again.orchestratorRequest.instanceId == instance_id
            assert again.completionToken != first.completionToken
            raw.stub.AbandonTaskOrchestratorWorkItem(
                pb.AbandonOrchestrationTaskRequest(completionToken=again.completionToken)
            )
            with pytest.raises(grpc.RpcError) as info:  # a token is good for one answer only
                raw.stub.AbandonTaskOrchestratorWorkItem(
                    pb.AbandonOrchestrationTaskRequest(completionToken=again.completionToken)
                )
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            # Still held by the sidecar: in the queue, invisible, never handed back to storage.
            assert sidecar.run(_held_invisibly(sidecar, instance_id))
            raw.close()
            with sdk_worker(sidecar.address, register):
                state = client.wait_for_orchestration_completion(instance_id, timeout=60)
            assert state is not None and json.loads(state.serialized_output) == "HI"
            poisoned = sidecar.run(_poison_rows(sidecar))
            assert poisoned == 0
        finally:
            raw.close()
            client.close()


async def _held_invisibly(sidecar: SidecarThread, instance_id: str) -> bool:
    assert sidecar.sidecar is not None
    hub = sidecar.sidecar.worker.hub
    queue_name = hub.names.control_queue_for(instance_id)
    async with sidecar.sidecar.account.queue_service() as service:
        queue = service.get_queue_client(queue_name)
        visible = await queue.peek_messages(max_messages=32)
        count = (await queue.get_queue_properties()).approximate_message_count
    return not visible and count >= 1


async def _poison_rows(sidecar: SidecarThread) -> int:
    assert sidecar.sidecar is not None
    hub = sidecar.sidecar.worker.hub
    table = hub.table_service.get_table_client(hub.names.poison_table)
    return len([row async for row in table.list_entities()])


def test_idle_stream_gets_health_pings(storage_account: StorageAccount) -> None:
    hub = "hp" + uuid.uuid4().hex[:12]
    with SidecarThread(storage_account, fast_settings(hub), ping_interval=0.2) as sidecar:
        raw = RawWorker(sidecar.address)
        try:
            assert raw.next("healthPing", timeout=10).HasField("healthPing")
        finally:
            raw.close()


def test_versioned_workers_reject_and_the_right_one_runs_it(storage_account: StorageAccount) -> None:
    """The SDK's version check (STRICT, REJECT) abandons episodes of other versions: the sidecar
    keeps offering them until the worker of the right version takes them."""
    from durabletask.worker import VersionFailureStrategy, VersioningOptions, VersionMatchStrategy

    def versioned(version: str) -> Any:
        def setup(worker: Any) -> None:
            register(worker)
            worker.use_versioning(
                VersioningOptions(
                    version=version,
                    match_strategy=VersionMatchStrategy.STRICT,
                    failure_strategy=VersionFailureStrategy.REJECT,
                )
            )

        return setup

    hub = "ver" + uuid.uuid4().hex[:12]
    with SidecarThread(storage_account, fast_settings(hub)) as sidecar:
        client = dt_client.TaskHubGrpcClient(host_address=sidecar.address)
        try:
            with sdk_worker(sidecar.address, versioned("2.0")), sdk_worker(sidecar.address, versioned("1.0")):
                ids = [client.schedule_new_orchestration(loud, input=f"v{i}", version="1.0") for i in range(4)]
                for i, instance_id in enumerate(ids):
                    state = client.wait_for_orchestration_completion(instance_id, timeout=90)
                    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.COMPLETED
                    assert json.loads(state.serialized_output) == f"V{i}"
            assert sidecar.sidecar is not None and sidecar.sidecar.broker.abandoned >= 1  # the 2.0 worker said no
            assert sidecar.run(_poison_rows(sidecar)) == 0
        finally:
            client.close()
