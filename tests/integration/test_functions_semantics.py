"""Functions (1.x) orchestrator semantics the pattern tests do not reach.

Long timers (the SDK's own split into 3-day hops, one id each, as on Azure Storage), suspension
(events held while suspended, released on resume), an event raised before the orchestrator
waits for it, and ``call_http`` run as the extension's built-in HTTP activity with ``202`` +
``Location`` polling against a real local HTTP server. Driven through ReplayState by the test
hub; no storage is needed.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import azure.durable_functions as df

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import (
    EventRaisedEvent,
    ExecutionResumedEvent,
    ExecutionSuspendedEvent,
    OrchestrationStatus,
    SubOrchestrationInstanceCreatedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
)
from durable_azstorage.runtimes.functions import (
    ActivityFunction,
    FunctionsActivityRuntime,
    FunctionsOrchestrationRuntime,
)
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.unit._runtime_hub import Hub


def hello(name: str) -> str:
    return f"Hello {name}!"


def long_sleep(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=ctx.get_input()))
    after = yield ctx.call_activity("Hello", "awake")
    return [after, ctx.current_utc_datetime.isoformat()]


def wait_after_work(ctx: df.DurableOrchestrationContext) -> Any:
    first = yield ctx.call_activity("Hello", "first")
    answer = yield ctx.wait_for_external_event("Go")
    return [first, answer]


def http_call(ctx: df.DurableOrchestrationContext) -> Any:
    # 1.x hands back the extension's DurableHttpResponse JSON as a dict.
    response = yield ctx.call_http("POST", ctx.get_input(), content={"job": 1})
    return {"status": response["statusCode"], "content": response["content"]}


CHILD_RUNS: dict[str, int] = {}


def flaky_child(ctx: df.DurableOrchestrationContext) -> Any:
    key = ctx.get_input()
    if not ctx.is_replaying:
        CHILD_RUNS[key] = CHILD_RUNS.get(key, 0) + 1
    yield ctx.call_activity("Hello", key)
    if CHILD_RUNS[key] < 3:
        raise ValueError(f"child attempt {CHILD_RUNS[key]} failed")
    return f"{key} ok"


def retry_children(ctx: df.DurableOrchestrationContext) -> Any:
    key, child_id = ctx.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=500, max_number_of_attempts=3)
    first = yield ctx.call_sub_orchestrator_with_retry("FlakyChild", options, key, child_id)
    second = yield ctx.call_activity("Hello", "after")
    return [first, second]


@pytest.fixture()
def hub() -> Hub:
    orchestrators = {
        name: df.Orchestrator.create(fn)
        for name, fn in {
            "LongSleep": long_sleep, "WaitAfterWork": wait_after_work, "HttpCall": http_call,
            "FlakyChild": flaky_child, "RetryChildren": retry_children,
        }.items()
    }
    activities = {"Hello": ActivityFunction(hello, "name")}
    return Hub(FunctionsOrchestrationRuntime(orchestrators), FunctionsActivityRuntime(activities))


async def test_a_long_timer_is_split_by_the_sdk_into_hops_with_one_id_each(hub: Hub) -> None:
    start = hub.now
    inst = hub.start("LongSleep", json.dumps(10))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    timers = [e for e in inst.history if isinstance(e, TimerCreatedEvent)]
    # The SDK hops 3 days while more than 6 remain (the Azure Storage limits we report), then
    # waits for the rest: 3 + 3 + 4 days, one id each, as on Azure.
    assert [t.event_id for t in timers] == [0, 1, 2]
    fire_times = [start, *(t.fire_at for t in timers)]
    hops = [later - earlier for earlier, later in itertools.pairwise(fire_times)]
    assert [round(h / timedelta(days=1)) for h in hops] == [3, 3, 4]
    assert timers[-1].fire_at == start + timedelta(days=10, seconds=1)  # the hub's clock ticks 1 s first
    assert json.loads(inst.output or "")[0] == "Hello awake!"


async def test_events_are_held_while_suspended_and_delivered_on_resume(hub: Hub) -> None:
    inst = hub.start("WaitAfterWork")
    await hub.run()
    assert inst.status == OrchestrationStatus.Running
    hub.raise_event("i1", ExecutionSuspendedEvent(reason="maintenance"))
    await hub.run()
    assert inst.status == OrchestrationStatus.Suspended
    hub.raise_event("i1", EventRaisedEvent(name="Go", input=json.dumps("yes")))
    await hub.run()
    assert inst.status == OrchestrationStatus.Suspended  # held, the orchestrator did not run
    hub.raise_event("i1", ExecutionResumedEvent(reason="done"))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert json.loads(inst.output or "") == ["Hello first!", "yes"]


async def test_an_event_raised_before_the_wait_is_kept_for_it(hub: Hub) -> None:
    inst = hub.start("WaitAfterWork")
    hub.raise_event("i1", EventRaisedEvent(name="Go", input=json.dumps({"early": True})))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert json.loads(inst.output or "") == ["Hello first!", {"early": True}]


@pytest.fixture()
async def polling_server() -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []

    async def submit(request: web.Request) -> web.Response:
        seen.append(f"POST {await request.text()}")
        return web.Response(status=202, headers={"Location": str(request.url.with_path("/status")), "Retry-After": "0"})

    async def status(request: web.Request) -> web.Response:
        seen.append("GET /status")
        if len(seen) < 3:
            return web.Response(status=202, headers={"Location": str(request.url), "Retry-After": "0"})
        return web.json_response({"done": True})

    app = web.Application()
    app.router.add_post("/jobs", submit)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/jobs", seen
    finally:
        await runner.cleanup()


async def test_call_http_follows_202_location_polling(hub: Hub, polling_server: tuple[str, list[str]]) -> None:
    url, seen = polling_server
    inst = hub.start("HttpCall", json.dumps(url))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert seen == ['POST {"job": 1}', "GET /status", "GET /status"]
    output = json.loads(inst.output or "")
    assert output["status"] == 200 and json.loads(output["content"]) == {"done": True}
    scheduled = inst.outcomes[0].work_item_messages[0].event
    assert scheduled.name == "BuiltIn::HttpActivity" and scheduled.event_id == 0


async def test_sub_orchestration_retry_takes_retry_interceptor_ids(hub: Hub) -> None:
    inst = hub.start("RetryChildren", json.dumps(["generated-id", None]), instance_id="parent")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert json.loads(inst.output or "") == ["generated-id ok", "Hello after!"]
    created = [(type(e).__name__.removesuffix("Event"), e.event_id) for e in inst.history
               if isinstance(e, (SubOrchestrationInstanceCreatedEvent, TimerCreatedEvent, TaskScheduledEvent))]
    assert created == [
        ("SubOrchestrationInstanceCreated", 0), ("TimerCreated", 1), ("SubOrchestrationInstanceCreated", 2),
        ("TimerCreated", 3), ("SubOrchestrationInstanceCreated", 4), ("TaskScheduled", 5),
    ]
    children = [e.instance_id for e in inst.history if isinstance(e, SubOrchestrationInstanceCreatedEvent)]
    assert len(set(children)) == 3  # a generated child id per attempt, deterministic per action id


async def test_sub_orchestration_retry_with_an_explicit_id_recreates_the_child(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    """Each attempt starts the same child id again (a new execution over the failed one), on Azurite."""
    orchestrators = {"FlakyChild": df.Orchestrator.create(flaky_child),
                     "RetryChildren": df.Orchestrator.create(retry_children)}
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    worker = Worker(
        storage_account, settings,
        orchestration_runtime=FunctionsOrchestrationRuntime(orchestrators),
        activity_runtime=FunctionsActivityRuntime({"Hello": ActivityFunction(hello, "name")}),
    )
    async with worker:
        client = await TaskHubClient.open(storage_account, task_hub_name)
        async with client:
            parent = await client.schedule_new_orchestration(
                "RetryChildren", input=json.dumps(["explicit-id", "child-of-parent"])
            )
            state = await client.wait_for_completion(parent, timeout=60)
            assert state.runtime_status == OrchestrationStatus.Completed, state.failure_details
            assert json.loads(state.output or "") == ["explicit-id ok", "Hello after!"]
            child = await client.get_orchestration_state("child-of-parent")
            assert child is not None and child.runtime_status == OrchestrationStatus.Completed
            assert CHILD_RUNS["explicit-id"] == 3  # two failed executions of the same id, then success
