"""The sidecar's broker: fair dispatch within limits, tokens, abandon and dropped streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durable_azstorage.sidecar._proto import pb
from durable_azstorage.sidecar.broker import Broker, Kind, SidecarStopping, UnknownCompletionToken


def _item(instance_id: str) -> Any:
    return pb.WorkItem(orchestratorRequest=pb.OrchestratorRequest(instanceId=instance_id))


def _limits(orchestrations: int = 10, activities: int = 10, entities: int = 10) -> dict[Kind, int]:
    return {Kind.ORCHESTRATION: orchestrations, Kind.ACTIVITY: activities, Kind.ENTITY: entities}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_nothing_is_sent_until_a_worker_connects() -> None:
    broker = Broker()
    run = asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("a"), ("a", None)))
    await _settle()
    assert broker.waiting(Kind.ORCHESTRATION) == 1
    worker = broker.connect(_limits())
    sent = worker.outbox.get_nowait()
    assert sent.orchestratorRequest.instanceId == "a" and sent.completionToken
    broker.complete(Kind.ORCHESTRATION, sent.completionToken, "done", ("a", None))
    assert await run == "done"


async def test_fair_dispatch_respects_limits() -> None:
    broker = Broker()
    first, second = broker.connect(_limits(orchestrations=2)), broker.connect(_limits(orchestrations=2))
    runs = [asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item(str(i)), (str(i), None))) for i in range(5)]
    await _settle()
    assert first.outbox.qsize() == 2 and second.outbox.qsize() == 2
    assert broker.waiting(Kind.ORCHESTRATION) == 1
    done = first.outbox.get_nowait()
    broker.complete(Kind.ORCHESTRATION, done.completionToken, "ok", ("", None))
    await _settle()
    assert first.outbox.qsize() == 2 and broker.waiting(Kind.ORCHESTRATION) == 0
    for r in runs:
        r.cancel()


async def test_kinds_have_separate_limits() -> None:
    broker = Broker()
    worker = broker.connect(_limits(orchestrations=1, activities=0))
    act = asyncio.ensure_future(broker.run(Kind.ACTIVITY, _item("x"), ("x", 1)))
    orch = asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("y"), ("y", None)))
    await _settle()
    assert worker.outbox.qsize() == 1 and broker.waiting(Kind.ACTIVITY) == 1
    act.cancel()
    orch.cancel()


async def test_abandon_and_dropped_stream_redispatch_without_storage() -> None:
    broker = Broker(abandon_pause=0)
    first = broker.connect(_limits())
    run = asyncio.ensure_future(broker.run(Kind.ACTIVITY, _item("a"), ("a", 3)))
    await _settle()
    token = first.outbox.get_nowait().completionToken
    broker.abandon(Kind.ACTIVITY, token)
    await _settle()
    again = first.outbox.get_nowait()
    assert again.completionToken != token
    with pytest.raises(UnknownCompletionToken):
        broker.complete(Kind.ACTIVITY, token, "late", ("a", 3))
    second = broker.connect(_limits())
    broker.disconnect(first)
    moved = second.outbox.get_nowait()
    assert moved.orchestratorRequest.instanceId == "a"
    # A worker that echoes no token (Go) is matched by instance id and task id.
    broker.complete(Kind.ACTIVITY, "", "result", ("a", 3))
    assert await run == "result"


async def test_stopping_gives_waiting_work_back() -> None:
    broker = Broker()
    orch = asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("a"), ("a", None)))
    act = asyncio.ensure_future(broker.run(Kind.ACTIVITY, _item("b"), ("b", 1)))
    await _settle()
    broker.stop_waiting()
    with pytest.raises(SidecarStopping):
        await orch
    with pytest.raises(asyncio.CancelledError):
        await act


async def test_work_item_filters_route_by_name_and_version() -> None:
    broker = Broker()
    orders = broker.connect(_limits(), {Kind.ORCHESTRATION: {"orders": frozenset()}, Kind.ACTIVITY: {}})
    billing = broker.connect(_limits(), {Kind.ORCHESTRATION: {"billing": frozenset({"2"})}})
    runs = [
        asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("a"), ("a", None), name="billing", version="1")),
        asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("b"), ("b", None), name="orders")),
        asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("c"), ("c", None), name="billing", version="2")),
        asyncio.ensure_future(broker.run(Kind.ACTIVITY, _item("d"), ("d", 1), name="charge")),
    ]
    await _settle()
    assert orders.outbox.get_nowait().orchestratorRequest.instanceId == "b"
    assert billing.outbox.get_nowait().orchestratorRequest.instanceId == "c"
    assert billing.outbox.get_nowait().orchestratorRequest.instanceId == "d"  # no activity filter: takes all
    # Version 1 of billing matches no connected worker: it waits, nothing else is blocked by it.
    assert broker.waiting(Kind.ORCHESTRATION) == 1 and orders.outbox.empty()
    for r in runs:
        r.cancel()


async def test_episode_hints_wake_only_their_instance() -> None:
    from durable_azstorage.sidecar.hints import EpisodeHints

    hints = EpisodeHints()
    with hints.watch("a") as a, hints.watch("b") as b:
        hints.notify("a")
        hints.notify("nobody-waits")
        assert a.is_set() and not b.is_set()
    hints.notify("a")  # no waiter left: nothing to do, nothing kept
    assert hints._waiters == {}


async def test_chunked_orchestrator_response_is_merged() -> None:
    from durable_azstorage.sidecar.worker_service import WorkerService

    broker = Broker()
    service = WorkerService(broker)
    worker = broker.connect(_limits())
    run = asyncio.ensure_future(broker.run(Kind.ORCHESTRATION, _item("a"), ("a", None)))
    await _settle()
    token = worker.outbox.get_nowait().completionToken

    def chunk(ids: list[int], partial: bool) -> Any:
        actions = [pb.OrchestratorAction(id=i, createTimer=pb.CreateTimerAction()) for i in ids]
        return pb.OrchestratorResponse(instanceId="a", actions=actions, completionToken=token, isPartial=partial)

    await service.CompleteOrchestratorTask(chunk([1, 2], True), None)
    await service.CompleteOrchestratorTask(chunk([3], True), None)
    assert not run.done()
    await service.CompleteOrchestratorTask(chunk([4], False), None)
    response = await run
    assert [a.id for a in response.actions] == [1, 2, 3, 4]
