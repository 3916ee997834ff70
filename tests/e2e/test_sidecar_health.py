"""The sidecar process serves the same probes as the worker (container images run either)."""

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


def start_sidecar(connection: str, hub: str, health_port: int, log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "durable_azstorage.cli", "sidecar", "--port", str(free_port()),
         "--connection", connection, "--task-hub-name", hub, "--health-port", str(health_port)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def status(url: str) -> int:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return 0


async def test_sidecar_probes_and_sigterm(storage_connection_string: str, task_hub_name: str, tmp_path: Path) -> None:
    health = free_port()
    log_path = tmp_path / "sidecar.log"
    log = log_path.open("w")
    proc = start_sidecar(storage_connection_string, task_hub_name, health, log)
    try:

        async def ready() -> bool:
            return await status(f"http://127.0.0.1:{health}/readyz") == 200

        await eventually(ready, timeout=60, message="sidecar ready")
        assert await status(f"http://127.0.0.1:{health}/healthz") == 200
        proc.send_signal(signal.SIGTERM)
        await eventually(lambda: proc.poll() is not None, timeout=60, message="sidecar exits after SIGTERM")
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert "stopping: handing work and partitions back" in log_path.read_text()
