"""The v1 (function.json) example app on the local host, on Azurite, driven only over HTTP.

The app is copied next to two folders a real app might have: one with a binding this host
does not provide and one with a broken ``function.json``; both are reported at start-up and
every other function works.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from tests.helpers import eventually

EXAMPLE = Path(__file__).parents[2] / "examples" / "functions_v1_app"
_SETTING = "DURABLE_AZSTORAGE_V1_TEST_SETTING"


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("__pycache__"))
    sms = app / "SendSms"
    sms.mkdir()
    (sms / "function.json").write_text(json.dumps({"bindings": [
        {"name": "req", "type": "httpTrigger", "direction": "in", "route": "sms"},
        {"name": "message", "type": "twilioSms", "direction": "out"},
        {"name": "$return", "type": "http", "direction": "out"},
    ]}))
    (sms / "__init__.py").write_text("def main(req, message):\n    return 'sent'\n")
    broken = app / "Broken"
    broken.mkdir()
    (broken / "function.json").write_text('{"bindings": [\n  {"name": "x",, }\n]}')
    (broken / "__init__.py").write_text("def main(x):\n    return x\n")
    (app / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": {_SETTING: "from-file"}}))
    yield app
    os.environ.pop(_SETTING, None)


@pytest.fixture
async def host(app_dir: Path, storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[FunctionsHost]:
    async with FunctionsHost.from_path(
        app_dir, storage_account, task_hub_name=task_hub_name, port=0,
        max_queue_polling_interval=timedelta(seconds=1),
    ) as running:
        yield running


async def _start(session: aiohttp.ClientSession, url: str, body: Any) -> dict[str, Any]:
    async with session.post(url, json=body) as response:
        assert response.status == 202, await response.text()
        payload: dict[str, Any] = await response.json()
        assert response.headers["Location"] == payload["statusQueryGetUri"]
        return payload


async def _output(session: aiohttp.ClientSession, host: FunctionsHost, orchestrator: str, body: Any) -> Any:
    payload = await _start(session, f"{host.base_url}/api/orchestrators/{orchestrator}", body)

    async def done() -> Any:
        async with session.get(payload["statusQueryGetUri"]) as response:
            assert response.status in (200, 202), await response.text()
            return await response.json() if response.status == 200 else None

    status = await eventually(done, timeout=45, interval=0.1, message=f"{orchestrator} done")
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


async def _counter(session: aiohttp.ClientSession, host: FunctionsHost, key: str) -> tuple[int, Any]:
    async with session.get(f"{host.base_url}/api/counters/{key}") as response:
        return response.status, await response.json()


async def test_v1_app_end_to_end(host: FunctionsHost) -> None:
    problems = "\n".join(host.index.problems)
    assert "'SendSms' was not loaded" in problems and "'message' of type 'twilioSms'" in problems
    assert "'Broken' was not loaded" in problems and "function.json: invalid JSON at line 2" in problems
    assert os.environ[_SETTING] == "from-file"  # local.settings.json Values reach the environment

    async with aiohttp.ClientSession() as session:
        async def counter() -> None:
            assert (await _counter(session, host, "missing"))[0] == 404
            for amount in (5, 3):
                async with session.post(f"{host.base_url}/api/counters/c1/add", json=amount) as response:
                    assert response.status == 202
            await eventually(
                lambda: _counter_is(session, host, "c1", 8), timeout=45, interval=0.1, message="counter reaches 8"
            )

        async def wait_with_named_output() -> None:
            url = f"{host.base_url}/api/orchestrators/E1_HelloSequence/wait?timeoutMs=30000"
            async with session.post(url, json=["Quito"]) as response:
                assert response.status == 200, await response.text()
                assert await response.json() == ["Hello Quito!"]

        chain, fan, subs, *_ = await asyncio.gather(
            _output(session, host, "E1_HelloSequence", ["Lima", "Oslo"]),
            _output(session, host, "E2_FanOutFanIn", {"count": 6}),
            _output(session, host, "E3_HelloCities", [["Lima"], ["Oslo", "Rome"]]),
            counter(),
            wait_with_named_output(),
        )
        assert chain == ["Hello Lima!", "Hello Oslo!"]
        assert fan == {"items": 6, "sum": 91}
        assert subs == [["Hello Lima!"], ["Hello Oslo!", "Hello Rome!"]]
        async with session.post(f"{host.base_url}/api/sms") as response:
            assert response.status == 404  # the skipped function is not served


async def _counter_is(session: aiohttp.ClientSession, host: FunctionsHost, key: str, value: int) -> bool:
    status, body = await _counter(session, host, key)
    return status == 200 and body == {"key": key, "value": value}


async def test_v1_route_prefix_and_auth_levels(
    app_dir: Path, storage_account: StorageAccount, task_hub_name: str
) -> None:
    host_json = json.loads((app_dir / "host.json").read_text())
    host_json["extensions"]["http"]["routePrefix"] = "v1"
    (app_dir / "host.json").write_text(json.dumps(host_json))
    async with FunctionsHost.from_path(
        app_dir, storage_account, task_hub_name=task_hub_name, port=0, key="s3cret",
        max_queue_polling_interval=timedelta(seconds=1),
    ) as host, aiohttp.ClientSession() as session:
        start = f"{host.base_url}/v1/orchestrators/E1_HelloSequence"
        async with session.post(start, json=["Riga"]) as response:
            assert response.status == 401  # authLevel "function" without the key
        async with session.post(start + "?code=s3cret", json=["Riga"]) as response:
            assert response.status == 202
        async with session.get(f"{host.base_url}/v1/counters/none") as response:
            assert response.status == 404  # anonymous: served without a key (and no such counter)
        async with session.get(f"{host.base_url}/api/counters/none") as response:
            assert response.status == 404 and "no such counter" not in await response.text()
        async with session.delete(f"{host.base_url}/v1/counters/none") as response:
            assert response.status == 405  # methods: get, post


def test_hosts_on_successive_event_loops_keep_the_client_working(
    app_dir: Path, storage_account: StorageAccount, task_hub_name: str
) -> None:
    """The 1.x client's process-wide HTTP session is re-made for a host on a new event loop."""

    async def start_one() -> int:
        async with (
            FunctionsHost.from_path(
                app_dir, storage_account, task_hub_name=task_hub_name, port=0,
                max_queue_polling_interval=timedelta(seconds=1),
            ) as host,
            aiohttp.ClientSession() as session,
            session.post(f"{host.base_url}/api/orchestrators/E1_HelloSequence", json=["A"]) as response,
        ):
            return response.status

    assert asyncio.run(start_one()) == 202
    assert asyncio.run(start_one()) == 202  # a new loop: without the fix, "Event loop is closed" (500)
