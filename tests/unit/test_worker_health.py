"""The worker's probes over real HTTP: what /healthz and /readyz answer in each state."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from durable_azstorage.worker.health import HealthServer, HealthState


@dataclass
class Probe:
    """The three readings the server takes from a Worker, set by each test."""

    owned_partitions: list[str] = field(default_factory=list)
    last_partition_check: float | None = None
    partition_loop_failed: bool = False


@pytest.fixture
async def served() -> AsyncIterator[tuple[Probe, HealthState, str]]:
    probe = Probe()
    health = HealthState(probe, worker_id="w1", task_hub="Hub", stale_after=15.0)
    async with HealthServer(health, host="127.0.0.1", port=0) as server:
        yield probe, health, f"http://127.0.0.1:{server.port}"


async def get(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_starting_is_alive_but_not_ready(served: tuple[Probe, HealthState, str]) -> None:
    _probe, _health, base = served
    assert (await get(f"{base}/healthz"))[0] == 200
    status, body = await get(f"{base}/readyz")
    assert (status, body["reason"], body["state"]) == (503, "starting", "starting")


async def test_running_with_a_recent_partition_read_is_ready(served: tuple[Probe, HealthState, str]) -> None:
    probe, health, base = served
    health.state = "running"
    status, body = await get(f"{base}/readyz")
    assert status == 503 and "not been read yet" in str(body["reason"])
    probe.last_partition_check = time.monotonic()
    probe.owned_partitions = ["hub-control-00", "hub-control-02"]
    status, body = await get(f"{base}/readyz")
    assert status == 200
    assert body["owned_partitions"] == ["hub-control-00", "hub-control-02"]
    assert (body["worker_id"], body["task_hub"]) == ("w1", "Hub")


async def test_a_stale_partition_read_is_not_ready_but_alive(served: tuple[Probe, HealthState, str]) -> None:
    probe, health, base = served
    health.state = "running"
    probe.last_partition_check = time.monotonic() - 40
    status, body = await get(f"{base}/readyz")
    assert status == 503 and "last read 40s ago" in str(body["reason"])
    assert (await get(f"{base}/healthz"))[0] == 200  # a storage outage is no reason to restart


async def test_stopping_is_not_ready(served: tuple[Probe, HealthState, str]) -> None:
    probe, health, base = served
    probe.last_partition_check = time.monotonic()
    health.state = "stopping"
    status, body = await get(f"{base}/readyz")
    assert (status, body["reason"]) == (503, "stopping")


async def test_a_dead_partition_loop_fails_liveness(served: tuple[Probe, HealthState, str]) -> None:
    probe, health, base = served
    health.state = "running"
    probe.partition_loop_failed = True
    status, body = await get(f"{base}/healthz")
    assert status == 503 and "partition loop" in str(body["reason"])
