"""A worker killed -9 between writing a finished history and its Instances row; ``doctor`` repairs it.

The worker process runs this module's app, whose ``register`` arms the kill: the moment the
worker is about to write a row saying ``Completed`` (its history is already committed, DTAS
checkpoint order), the process SIGKILLs itself. That leaves exactly what users see after a crash:
a Running row over a finished history, and lease rows owned by a dead worker. ``doctor`` must
report both with the right ids, ``doctor --repair`` must fix both, and the CLI exit codes must say
so (1 with problems, 0 once healthy).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.storage import TaskHubResources
from tests.helpers import error_lines, eventually

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def hello(ctx: task.OrchestrationContext, name: str) -> Generator[task.Task[Any], Any, str]:
    greeting: str = yield ctx.call_activity(greet, input=name)
    return greeting


def register(worker: Any) -> None:
    """The worker app; also arms the kill at the bad moment (only inside that worker process)."""
    from durable_azstorage.storage.instance_store import InstanceStore

    original = InstanceStore.merge_checkpoint

    async def merge_then_die(self: InstanceStore, entity: Any, **kwargs: Any) -> str:
        if entity.get("RuntimeStatus") == OrchestrationStatus.Completed.name:
            os.kill(os.getpid(), signal.SIGKILL)
        return await original(self, entity, **kwargs)

    InstanceStore.merge_checkpoint = merge_then_die  # type: ignore[method-assign]
    worker.add_orchestrator(hello)
    worker.add_activity(greet)


def _doctor(conn: str, hub: str, *args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "doctor", "--connection", conn, "--task-hub-name", hub,
         "--horizon", "0", "--json", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _spawn_worker(conn: str, hub: str, log_path: Path) -> tuple[subprocess.Popen[bytes], Any]:
    log = open(log_path, "w")  # noqa: SIM115 - closed by the test
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable_azstorage.cli", "worker", "--app", "tests.e2e.test_doctor_kill9:register",
         "--connection", conn, "--task-hub-name", hub, "--worker-id", "doomed", "--max-polling-interval", "1",
         "--lease-interval", "10"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
    )
    return proc, log


def _ids(report: dict[str, Any], code: str) -> list[str]:
    return sorted(i["id"] for f in report["findings"] if f["code"] == code for i in f["items"])


async def test_kill9_between_history_and_row_is_found_and_repaired(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> None:
    conn, hub = storage_connection_string, task_hub_name
    await TaskHubResources(storage_account, TaskHubNames(hub)).create()
    proc, log = _spawn_worker(conn, hub, tmp_path / "worker.log")
    try:
        async with await TaskHubClient.open(storage_account, hub) as client:
            await client.schedule_new_orchestration("hello", input="crash", instance_id="victim")
            await eventually(lambda: proc.poll() is not None, timeout=90, message="worker killed itself")
            assert proc.returncode == -signal.SIGKILL

            code, report = _doctor(conn, hub)
            assert code == 1
            assert _ids(report, "status.terminal-history-live-row") == ["victim"]

            async def leases_expired() -> bool:
                return len(_ids(_doctor(conn, hub)[1], "partitions.no-live-owner")) == 4

            await eventually(leases_expired, timeout=60, interval=1, message="dead worker's leases expired")
            code, repaired = _doctor(conn, hub, "--repair")
            fixed = {(r["repair"], r["target"]) for r in repaired["repairs"] if r["outcome"] == "fixed"}
            assert ("sync-status-from-history", "victim") in fixed
            assert sum(1 for name, _ in fixed if name == "release-expired-lease") == 4
            assert _ids(repaired, "status.terminal-history-live-row") == []
            assert _ids(repaired, "partitions.no-live-owner") == []
            assert code == 0, repaired["findings"]  # released partitions are info only
            state = await client.get_orchestration_state("victim")
            assert state is not None and state.runtime_status is OrchestrationStatus.Completed
            assert json.loads(state.output or "null") == "Hello crash!"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_doctor_bad_input_is_one_line(storage_connection_string: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "durable_azstorage.cli", "doctor", "--connection", storage_connection_string,
             *args], capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        )

    missing = run("--task-hub-name", "nosuchhub42")
    assert missing.returncode == 2
    assert error_lines(missing.stderr) == [
        "error: no task hub 'nosuchhub42' in this account (no tables or queues); check --task-hub-name"
    ]
    bad_name = run("--task-hub-name", "no-dashes!")
    assert bad_name.returncode == 2 and len(error_lines(bad_name.stderr)) == 1, bad_name.stderr
    bad_option = run("--task-hub-name", "x", "--horizon", "-1")
    assert bad_option.returncode == 2 and "--horizon" in bad_option.stderr


def test_replay_check_and_export_on_a_missing_hub_are_one_line(storage_connection_string: str) -> None:
    for verb, extra in (("replay-check", ["--app", "tests.integration.replay_apps:v1"]),
                        ("export-history", ["--id", "x"])):
        proc = subprocess.run(
            [sys.executable, "-m", "durable_azstorage.cli", verb, "--connection", storage_connection_string,
             "--task-hub-name", "nosuchhub43", *extra],
            capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.returncode == 2, (verb, proc.stderr)
        assert error_lines(proc.stderr) == [
            "error: no task hub 'nosuchhub43' in this account; check --task-hub-name"
        ], verb
