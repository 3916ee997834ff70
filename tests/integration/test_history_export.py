"""``export-history`` on Azurite, then ``durable_azstorage.testing.replay`` of the file in plain code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import MessageDecodeError
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.testing import load_history, replay
from durable_azstorage.worker import Worker
from tests.helpers import error_lines
from tests.integration import incident_app

REPO = Path(__file__).resolve().parents[2]


def _cli(conn: str, hub: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "export-history", "--connection", conn,
         "--task-hub-name", hub, *args], capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def _failed_checkout(account: StorageAccount, hub: str) -> None:
    settings = WorkerSettings(task_hub_name=hub, max_queue_polling_interval=timedelta(seconds=1),
                              lease_acquire_interval=timedelta(seconds=2))
    worker = Worker(account, settings)
    worker.add_orchestrator(incident_app.checkout)
    worker.add_activity(incident_app.reserve)
    worker.add_activity(incident_app.charge)
    async with worker, await TaskHubClient.open(account, hub) as client:
        await client.schedule_new_orchestration("checkout", input=42, instance_id="order-42")
        state = await client.wait_for_completion("order-42", timeout=60)
        assert state.runtime_status is OrchestrationStatus.Failed


def _replay_like_a_unit_test(out: Path) -> None:
    """What a user's plain pytest test does with the exported file (no storage, no event loop)."""
    # The recorded code reproduces the incident...
    same = replay(incident_app.checkout, out)
    assert same.deterministic and same.status is OrchestrationStatus.Failed
    assert same.failure is not None and "card declined for reservation-42" in same.failure.error_message
    assert same.custom_status == "charging"
    # ...the fix replays the same history and handles it...
    fixed = replay(incident_app.checkout_fixed, out)
    assert fixed.deterministic and fixed.status is OrchestrationStatus.Running
    assert fixed.scheduled_activities == ["release"]
    # ...and a careless change is caught, with the line that changed.
    changed = replay(incident_app.checkout_reordered, load_history(out))
    assert not changed.deterministic and changed.divergence is not None
    line = next(n for n, text in enumerate(Path(incident_app.__file__).read_text(encoding="utf-8").splitlines(), 1)
                if "THE-CHANGED-LINE" in text)
    assert f"{incident_app.__file__}:{line}" in changed.divergence


async def test_export_then_replay_in_a_unit_test(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> None:
    await _failed_checkout(storage_account, task_hub_name)
    out = tmp_path / "order-42.json"
    written = _cli(storage_connection_string, task_hub_name, "--id", "order-42", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith("Wrote ") and "order-42" in written.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["format"] == "durable-azstorage.history/1" and document["runtimeStatus"] == "Failed"
    assert document["name"] == "checkout" and document["events"][0]["$type"].startswith("DurableTask.Core.History.")
    stdout = _cli(storage_connection_string, task_hub_name, "--id", "order-42")
    assert json.loads(stdout.stdout)["events"] == document["events"]

    _replay_like_a_unit_test(out)

    missing = _cli(storage_connection_string, task_hub_name, "--id", "no-such-order")
    assert missing.returncode == 2
    assert error_lines(missing.stderr) == [f"error: no instance 'no-such-order' in task hub '{task_hub_name}'"]


def test_a_file_that_is_not_an_export_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"events": []}', encoding="utf-8")
    with pytest.raises(MessageDecodeError, match=r"x.json: not a history export"):
        load_history(bad)
    bad.write_text('{"format": "durable-azstorage.history/1", "events": [{"$type": "System.IO.File"}]}')
    with pytest.raises(MessageDecodeError, match=r"events\[0\]"):
        load_history(bad)
