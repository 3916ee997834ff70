"""The checks of infra/podman-smoke.sh: three worker containers on one task hub (run by hand).

``python tests/deploy/podman_smoke.py CONNECTION HUB "podman --runtime runc"``. Prints what it saw;
exits non-zero on the first check that fails.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
import time
import urllib.request
from collections import Counter

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus

NAMES = ("durable-w1", "durable-w2", "durable-w3")


async def owners(account: StorageAccount, hub: str) -> Counter[str]:
    async with account.table_service() as tables:
        table = tables.get_table_client(f"{hub}Partitions")
        try:
            rows = [e async for e in table.query_entities("PartitionKey eq ''")]
        except Exception:  # not created yet
            return Counter()
        return Counter(str(e.get("CurrentOwner") or "") for e in rows)


async def until(what: str, check: object, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():  # type: ignore[operator]
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise SystemExit(f"FAILED: {what} within {timeout:.0f}s")


def ready(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except Exception:
        return 0


async def sh(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, list(args), capture_output=True, text=True)


async def main(connection: str, hub: str, podman: list[str]) -> None:
    account = StorageAccount.from_connection_string(connection)

    async def spread() -> bool:
        counts = await owners(account, hub)
        return set(counts) == set(NAMES) and sorted(counts.values()) == [1, 1, 2]

    took = await until("three containers share the 4 partitions", spread, 180)
    print(f"partitions spread over 3 containers after {took:.1f}s: {dict(await owners(account, hub))}")
    print("readiness:", {name: ready(18081 + i) for i, name in enumerate(NAMES)})
    async with await TaskHubClient.open(account, hub) as client:
        started = time.monotonic()
        ids = await asyncio.gather(*(client.schedule_new_orchestration("hello_sequence") for _ in range(30)))

        async def all_done() -> bool:
            states = await asyncio.gather(*(client.get_orchestration_state(i, fetch_payloads=False) for i in ids))
            return all(s is not None and s.runtime_status == OrchestrationStatus.Completed for s in states)

        await until("30 orchestrations completed", all_done, 300)
        ran_on: Counter[str] = Counter()
        for instance_id in ids:
            state = await client.get_orchestration_state(instance_id)
            ran_on.update(line.rsplit(" ", 1)[-1] for line in json.loads(state.output or "[]"))  # type: ignore[union-attr]
        print(f"30 hello_sequences completed in {time.monotonic() - started:.1f}s; activities per container: "
              f"{dict(ran_on)}")
        if set(ran_on) != set(NAMES):
            raise SystemExit("FAILED: not every container ran activities")

    stopped = time.monotonic()
    await sh(*podman, "stop", "-t", "90", "durable-w3")
    stop_took = time.monotonic() - stopped
    exit_code = (await sh(*podman, "inspect", "--format", "{{.State.ExitCode}}", "durable-w3")).stdout.strip()

    async def handed_over() -> bool:
        counts = await owners(account, hub)
        return set(counts) == {"durable-w1", "durable-w2"} and sorted(counts.values()) == [2, 2]

    handover = await until("durable-w3's partitions handed over", handed_over, 60) + stop_took
    print(f"podman stop durable-w3: exited with code {exit_code} after {stop_took:.1f}s; "
          f"partitions 2/2 on the other two {handover:.1f}s after the stop began")
    if exit_code != "0":
        raise SystemExit("FAILED: the stopped container did not exit 0")
    health = await sh(*podman, "healthcheck", "run", "durable-w1")
    print(f"podman healthcheck run durable-w1 (the image's HEALTHCHECK): exit {health.returncode}")
    if health.returncode != 0:
        raise SystemExit(f"FAILED: healthcheck: {health.stderr.strip()}")
    print("podman smoke: OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], shlex.split(sys.argv[3])))
