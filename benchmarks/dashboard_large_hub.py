"""How the dashboard's JSON routes behave on a hub of 10,000 instances (issue #19).

    .venv/bin/python -m benchmarks.dashboard_large_hub [--instances 10000] [--repeat 5]

Starts a private in-memory Azurite, writes N Instances rows in the DTAS layout (the rows a
client start writes, with statuses and names spread over the hub; no worker runs, so this
measures the dashboard's reads, not orchestration throughput), serves the dashboard in-process
and times each route (median of ``--repeat`` calls, with the storage transactions each one made;
the periodic status count is pushed out to an hour so it does not mix into those counts),
then each page in Debian's Chromium (navigation until its data is on screen).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp import web

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.azurite import Azurite
from durable_azstorage.codec import instance_codec
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.dashboard import counted_account, create_dashboard_app
from durable_azstorage.model import ExecutionStartedEvent, OrchestrationInstance
from durable_azstorage.storage import TaskHubResources

STATUSES = ["Completed"] * 80 + ["Running"] * 15 + ["Failed"] * 4 + ["Terminated"]
NAMES = ["order_flow", "payment_flow", "shipping_flow", "hello_sequence"]


async def populate(account: StorageAccount, hub: str, count: int) -> float:
    await TaskHubResources(account, TaskHubNames(hub)).create()
    start = time.perf_counter()
    base = datetime.now(timezone.utc) - timedelta(hours=2)
    async with account.table_service() as tables:
        table = tables.get_table_client(TaskHubNames(hub).instances_table)
        limiter = asyncio.Semaphore(64)

        async def write(n: int) -> None:
            event = ExecutionStartedEvent(
                orchestration_instance=OrchestrationInstance(
                    instance_id=f"inst-{n:05d}", execution_id=uuid.uuid4().hex
                ),
                name=NAMES[n % len(NAMES)],
                input=json.dumps({"n": n}),
                timestamp=base + timedelta(seconds=n * 0.5),
            )
            row = instance_codec.instance_entity_for_create(event, hub, now=event.timestamp + timedelta(seconds=3))
            row["RuntimeStatus"] = STATUSES[n % len(STATUSES)]
            async with limiter:
                await table.upsert_entity(row)

        await asyncio.gather(*(write(n) for n in range(count)))
    return time.perf_counter() - start


async def quiet(counter: Any, still: float = 3.0, limit: float = 300.0) -> None:
    """Wait until no storage request was counted for ``still`` seconds (or ``limit`` passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last, since = counter.total, loop.time()
    while loop.time() < deadline and loop.time() - since < still:
        await asyncio.sleep(0.5)
        if counter.total != last:
            last, since = counter.total, loop.time()


async def measure(account: StorageAccount, hub: str, repeat: int) -> list[dict[str, Any]]:
    counted, counter = counted_account(account)
    async with await TaskHubClient.open(counted, hub) as client:
        runner = web.AppRunner(create_dashboard_app(client, counter=counter, sample_interval=3600), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/dashboard/api"
        await quiet(counter)  # the app's start-up scans (status count, doctor) must not mix into the counts
        routes = {
            "instances, first page of 50": "/instances?top=50",
            "instances, status=Failed (4%)": "/instances?top=50&status=Failed",
            "instances, name prefix payment": "/instances?top=50&namePrefix=payment",
            "instances, id prefix inst-097": "/instances?top=50&instanceIdPrefix=inst-097",
            "instances, updated in the last 10 min": "/instances?top=50&updatedFrom="
            + (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "one instance": "/instances/inst-04242",
            "overview (recount in the background)": "/overview",
        }
        out = []
        async with aiohttp.ClientSession() as http:
            for label, path in routes.items():
                times, txs, rows = [], [], None
                for _ in range(repeat):
                    if path == "/overview":
                        await asyncio.sleep(5.1)  # pacing: the overview recounts when its count is over 5 s old
                    before = counter.total
                    t0 = time.perf_counter()
                    async with http.get(base + path) as r:
                        body = await r.json()
                        assert r.status == 200, body
                    times.append((time.perf_counter() - t0) * 1000)
                    txs.append(counter.total - before)
                    if isinstance(body, dict) and "instances" in body:
                        rows = len(body["instances"])
                out.append({"route": label, "median_ms": round(statistics.median(times), 1),
                            "max_ms": round(max(times), 1), "transactions": statistics.median(txs), "rows": rows})
        out.extend(await measure_pages(f"http://127.0.0.1:{runner.addresses[0][1]}/dashboard", repeat))
        await runner.cleanup()
    return out


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def measure_pages(base: str, repeat: int) -> list[dict[str, Any]]:
    """Time from navigation to the page's data on screen, in Debian's Chromium (if installed)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return [{"route": "pages", "skipped": "no chromium on PATH"}]
    from playwright.async_api import async_playwright

    pages = {
        "page: instances (first 50 rows on screen)": ("/instances", "#instances-table tbody tr[data-instance-id]"),
        "page: instances, status=Failed": ("/instances?status=Failed", "#instances-table tbody tr[data-instance-id]"),
        "page: one instance": ("/instances/inst-04242", "#instance-id"),
        "page: overview (partitions on screen)": ("/overview", "#partitions tbody tr"),
    }
    out = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = await browser.new_page()
        for label, (path, selector) in pages.items():
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                await page.goto(base + path)
                await page.wait_for_selector(selector)
                times.append((time.perf_counter() - t0) * 1000)
            median, worst = round(statistics.median(times), 1), round(max(times), 1)
            out.append({"route": label, "median_ms": median, "max_ms": worst})
        await browser.close()
    return out


async def main_async(count: int, repeat: int) -> None:
    with Azurite() as azurite:
        account = StorageAccount.from_connection_string(azurite.connection_string)
        hub = "Big" + uuid.uuid4().hex[:8]
        seconds = await populate(account, hub, count)
        print(f"wrote {count} Instances rows in {seconds:.1f} s")
        for row in await measure(account, hub, repeat):
            print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main_async(args.instances, args.repeat))


if __name__ == "__main__":
    main()
