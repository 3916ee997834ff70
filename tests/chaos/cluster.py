"""Worker hosts as real processes (SIGKILL-able) and an Azurite that restarts with its data.

Hosts run ``durable-azstorage worker --app tests.chaos.app:register`` through the fault proxy,
each generation under a new worker id (as ``host:pid`` would be), logging to a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from durable_azstorage.azurite import DEV_ACCOUNT_NAME, Azurite

REPO = Path(__file__).resolve().parents[2]


@dataclass
class HostSettings:
    visibility_timeout: float = 4.0
    lease_interval: float = 6.0
    read_timeout: float = 4.0
    client_retries: int = 1
    partition_count: int = 4


@dataclass
class Hosts:
    connection_string: str
    task_hub: str
    ledger: Path
    logs: Path
    settings: HostSettings = field(default_factory=HostSettings)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_ids: dict[int, str] = field(default_factory=dict)
    generation: int = 0
    kills: int = 0

    def start(self, slot: int) -> str:
        self.generation += 1
        worker_id = f"chaos{slot}-g{self.generation}"
        s = self.settings
        env = {
            **os.environ,
            "CHAOS_LEDGER": str(self.ledger),
            "DURABLE_AZSTORAGE_READ_TIMEOUT": str(s.read_timeout),
            "DURABLE_AZSTORAGE_RETRY_TOTAL": str(s.client_retries),
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        log = open(self.logs / f"{worker_id}.log", "wb")  # noqa: SIM115 - handed to the child
        self.procs[slot] = subprocess.Popen(
            [
                sys.executable, "-m", "durable_azstorage.cli", "worker",
                "--app", "tests.chaos.app:register",
                "--connection", self.connection_string,
                "--task-hub-name", self.task_hub,
                "--partition-count", str(s.partition_count),
                "--worker-id", worker_id,
                "--max-polling-interval", "1",
                "--visibility-timeout", str(s.visibility_timeout),
                "--lease-interval", str(s.lease_interval),
            ],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        self.worker_ids[slot] = worker_id
        return worker_id

    def kill(self, slot: int) -> str:
        """SIGKILL: no hand-over, no release; the lease must expire."""
        proc = self.procs.pop(slot)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.kills += 1
        return self.worker_ids[slot]

    def alive(self, slot: int) -> bool:
        proc = self.procs.get(slot)
        return proc is not None and proc.poll() is None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


class PersistentAzurite:
    """Azurite with on-disk data; :meth:`restart` comes back on new ports with the same data."""

    def __init__(self, location: Path) -> None:
        self._location = location
        self._azurite: Azurite | None = None
        self.restarts = 0

    def start(self) -> dict[str, str]:
        self._azurite = Azurite(location=self._location)
        endpoints = self._azurite.start()
        return {
            "blob": f"{endpoints.blob}/{DEV_ACCOUNT_NAME}",
            "queue": f"{endpoints.queue}/{DEV_ACCOUNT_NAME}",
            "table": f"{endpoints.table}/{DEV_ACCOUNT_NAME}",
        }

    def restart(self) -> dict[str, str]:
        self.stop()
        self.restarts += 1
        return self.start()

    def stop(self) -> None:
        if self._azurite is not None:
            self._azurite.stop()
            self._azurite = None
