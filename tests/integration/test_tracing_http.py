"""An incoming ``traceparent`` parents ``create_orchestration`` — on the local Functions host (through
the app's durable client and the host's loopback RPC route) and on the management API's start route.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from durable_azstorage import telemetry
from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from tests.helpers import eventually

APP = Path(__file__).parent / "functions_apps" / "v2_basic"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    try:
        yield exporter
    finally:
        telemetry.disable()


@pytest.fixture
async def host(
    spans: InMemorySpanExporter, storage_account: StorageAccount, task_hub_name: str
) -> AsyncIterator[FunctionsHost]:
    async with FunctionsHost.from_path(
        APP, storage_account, task_hub_name=task_hub_name, port=0, max_queue_polling_interval=timedelta(seconds=1)
    ) as running:
        yield running


async def _until_done(session: aiohttp.ClientSession, status_url: str, timeout: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with session.get(status_url) as response:
            if response.status == 200:
                return await response.json()
        assert loop.time() < deadline, f"{status_url} still running after {timeout} s"
        await asyncio.sleep(0.1)


def _caller() -> tuple[int, int, str]:
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"


async def _one_trace(spans: InMemorySpanExporter, instance_id: str, trace_id: int, span_id: int) -> None:
    def mine() -> list[ReadableSpan]:
        return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]

    await eventually(lambda: any(s.name == "orchestration:hello_orchestrator" for s in mine()), timeout=30,
                     message="orchestration span in the caller's trace")
    (create,) = [s for s in mine() if s.name == "create_orchestration:hello_orchestrator"]
    assert create.kind == SpanKind.PRODUCER
    assert create.parent is not None and create.parent.span_id == span_id and create.parent.is_remote
    (orchestration,) = [s for s in mine() if s.name == "orchestration:hello_orchestrator"]
    assert orchestration.attributes is not None
    assert orchestration.attributes["durabletask.task.instance_id"] == instance_id
    hellos = [s for s in mine() if s.name == "activity:hello"]
    runs = [s for s in hellos if s.kind == SpanKind.SERVER]
    calls = [s for s in hellos if s.kind == SpanKind.CLIENT]
    assert len(runs) == 2 and len(calls) == 2  # each run under the orchestration's CLIENT span for it
    assert {s.parent.span_id for s in runs if s.parent} == {s.context.span_id for s in calls}


async def test_traceparent_of_an_http_triggered_start(spans: InMemorySpanExporter, host: FunctionsHost) -> None:
    trace_id, span_id, traceparent = _caller()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{host.base_url}/api/orchestrators/hello_orchestrator", json=["Lima", "Oslo"],
                                headers={"traceparent": traceparent}) as r:
            assert r.status == 202
            payload = await r.json()
        done = await _until_done(session, payload["statusQueryGetUri"])
    assert done["runtimeStatus"] == "Completed"
    await _one_trace(spans, payload["id"], trace_id, span_id)


async def test_traceparent_on_the_management_start_route(spans: InMemorySpanExporter, host: FunctionsHost) -> None:
    trace_id, span_id, traceparent = _caller()
    async with aiohttp.ClientSession() as session:
        url = f"{host.base_url}/runtime/webhooks/durabletask/orchestrators/hello_orchestrator"
        async with session.post(url, json=["Lima", "Oslo"], headers={"traceparent": traceparent}) as r:
            assert r.status == 202, await r.text()
            payload = await r.json()
        done = await _until_done(session, payload["statusQueryGetUri"])
    assert done["runtimeStatus"] == "Completed"
    await _one_trace(spans, payload["id"], trace_id, span_id)
