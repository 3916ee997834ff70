"""``sidecar`` and ``run`` serve the same probes as ``worker`` (the container image runs any of them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import aiohttp
import pytest

from tests.e2e.test_multi_worker import free_port
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


VERBS = {
    "sidecar": (["sidecar"], "stopping: handing work and partitions back"),
    "run": (["run", str(REPO / "examples" / "functions_app")], "stopping: releasing partitions"),
}


def start(verb: str, connection: str, hub: str, health_port: int, log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "durable_azstorage.cli", *VERBS[verb][0], "--port", str(free_port()),
         "--connection", connection, "--task-hub-name", hub, "--health-port", str(health_port)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def status(url: str) -> int:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return 0


@pytest.mark.parametrize("verb", sorted(VERBS))
async def test_probes_and_sigterm(
    verb: str, storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> None:
    health = free_port()
    log_path = tmp_path / f"{verb}.log"
    log = log_path.open("w")
    proc = start(verb, storage_connection_string, task_hub_name, health, log)
    try:

        async def ready() -> bool:
            return await status(f"http://127.0.0.1:{health}/readyz") == 200

        await eventually(ready, timeout=60, message=f"{verb} ready")
        assert await status(f"http://127.0.0.1:{health}/healthz") == 200
        proc.send_signal(signal.SIGTERM)
        await eventually(lambda: proc.poll() is not None, timeout=60, message=f"{verb} exits after SIGTERM")
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert VERBS[verb][1] in log_path.read_text()
