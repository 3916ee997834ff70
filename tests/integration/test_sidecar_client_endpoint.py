"""The client half alone (what the Functions host serves at ``rpcBaseUrl``) next to an in-process
worker, the ``taskhub`` metadata, UNIMPLEMENTED answers, and the sidecar's key."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Coroutine, Generator, Iterator
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask import task

from durable_azstorage.connection import StorageAccount
from durable_azstorage.sidecar import ClientEndpoint
from durable_azstorage.sidecar._proto import pb, pb_grpc
from durable_azstorage.worker import Worker
from tests.sidecar_support import SidecarThread, fast_settings

pytestmark = pytest.mark.integration


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def greet(ctx: task.OrchestrationContext, name: str) -> Generator[task.Task[Any], Any, str]:
    return (yield ctx.call_activity(hello, input=name))


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def endpoint(storage_account: StorageAccount) -> Iterator[tuple[ClientEndpoint, str]]:
    hub = "ce" + uuid.uuid4().hex[:12]
    loop = LoopThread()
    worker = Worker(storage_account, fast_settings(hub))
    worker.add_orchestrator(greet)
    worker.add_activity(hello)
    loop.run(worker.start())
    ep = ClientEndpoint(storage_account, hub)
    loop.run(ep.start())
    try:
        yield ep, hub
    finally:
        loop.run(ep.stop())
        loop.run(worker.stop(), timeout=120)
        loop.close()


def test_client_half_alone_serves_sdk_clients_for_an_in_process_worker(
    endpoint: tuple[ClientEndpoint, str],
) -> None:
    ep, hub = endpoint
    address = f"127.0.0.1:{ep.port}"
    # The taskhub metadata (azure-functions-durable 2.x sends it) selects the hub.
    c = dt_client.TaskHubGrpcClient(host_address=address, metadata=[("taskhub", hub)])
    try:
        instance_id = c.schedule_new_orchestration(greet, input="gRPC")
        state = c.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state is not None and json.loads(state.serialized_output) == "Hello gRPC!"
    finally:
        c.close()
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.TaskHubSidecarServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            next(iter(stub.GetWorkItems(pb.GetWorkItemsRequest())))
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "client half only" in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            stub.SkipGracefulOrchestrationTerminations(pb.SkipGracefulOrchestrationTerminationsRequest())
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        missing = [("taskhub", "nosuchhub" + uuid.uuid4().hex[:8])]
        with pytest.raises(grpc.RpcError) as info:
            stub.GetInstance(pb.GetInstanceRequest(instanceId="x"), metadata=missing)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "does not exist" in (info.value.details() or "")


def test_sidecar_key_is_required_when_set(storage_account: StorageAccount) -> None:
    hub = "key" + uuid.uuid4().hex[:12]
    with SidecarThread(storage_account, fast_settings(hub), key="s3cret") as sidecar:
        denied = dt_client.TaskHubGrpcClient(host_address=sidecar.address)
        allowed = dt_client.TaskHubGrpcClient(
            host_address=sidecar.address, metadata=[("authorization", "Bearer s3cret")]
        )
        try:
            with pytest.raises(grpc.RpcError) as info:
                denied.get_orchestration_state("x")
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert allowed.get_orchestration_state("x") is None
            with grpc.insecure_channel(sidecar.address) as channel:  # the worker stream too
                stream = pb_grpc.TaskHubSidecarServiceStub(channel).GetWorkItems(pb.GetWorkItemsRequest())
                with pytest.raises(grpc.RpcError) as info:
                    next(iter(stream))
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "authorization: Bearer" in (info.value.details() or "")
        finally:
            denied.close()
            allowed.close()
