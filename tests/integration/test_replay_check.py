"""``replay-check`` on Azurite: real running instances, replayed against new code without writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost, load_app
from durable_azstorage.model import EventType, OrchestrationStatus
from durable_azstorage.operations.history_export import RecordedHistory, export_history, parse_history_document
from durable_azstorage.operations.replay_check import DurableTaskReplayer, FunctionsReplayer, replay_instances
from durable_azstorage.runtimes.base import Registry
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.testing import replay_functions_app
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.integration import replay_apps

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).parent / "functions_apps"


def _registry(register: object) -> Registry:
    registry = Registry()
    register(registry)  # type: ignore[operator]
    return registry


def _line_of(marker: str) -> int:
    text = Path(replay_apps.__file__).read_text(encoding="utf-8")
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


async def _waiting(client: TaskHubClient, instance_id: str) -> bool:
    history = await client.get_orchestration_history(instance_id)
    return any(e.event_type is EventType.TaskCompleted for e in history)


def _cli(conn: str, hub: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "replay-check", "--connection", conn, "--task-hub-name", hub,
         *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def test_durabletask_app(storage_account: StorageAccount, storage_connection_string: str,
                               task_hub_name: str) -> None:
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1),
                              lease_acquire_interval=timedelta(seconds=2))
    worker = Worker(storage_account, settings)
    replay_apps.v1(worker)
    async with await TaskHubClient.open(storage_account, task_hub_name) as client:
        async with worker:
            for instance_id in ("o1", "o2"):
                await client.schedule_new_orchestration("order", input=instance_id, instance_id=instance_id)
            for instance_id in ("o1", "o2"):
                await eventually(lambda i=instance_id: _waiting(client, i), timeout=60, message="order waiting")
            await client.schedule_new_orchestration("order", input="o3", instance_id="o3")
            await client.raise_event("o3", "approve")
            await client.wait_for_completion("o3", timeout=60)
        before = await client.get_orchestration_history("o1")

        same = await replay_instances(storage_account, task_hub_name, DurableTaskReplayer(_registry(replay_apps.v1)))
        assert sorted((v.instance_id, v.verdict) for v in same) == [("o1", "deterministic"), ("o2", "deterministic")]
        safe = await replay_instances(storage_account, task_hub_name, DurableTaskReplayer(_registry(replay_apps.safe)))
        assert {v.verdict for v in safe} == {"deterministic"}

        broken = await replay_instances(
            storage_account, task_hub_name, DurableTaskReplayer(_registry(replay_apps.breaking)), instance_ids=["o1"]
        )
        (verdict,) = broken
        assert verdict.verdict == "divergent" and not verdict.ok
        assert verdict.recorded == "call_activity('reserve') #1"
        assert verdict.new == "call_activity('charge') #1"
        line = _line_of("LINE-OF-THE-CHANGE")
        assert verdict.source == f"{replay_apps.__file__}:{line}"

        raising = await replay_instances(
            storage_account, task_hub_name, DurableTaskReplayer(_registry(replay_apps.raising)), instance_ids=["o2"]
        )
        assert raising[0].verdict == "failed" and "KeyError" in raising[0].message
        missing = await replay_instances(
            storage_account, task_hub_name, DurableTaskReplayer(_registry(replay_apps.renamed)), instance_ids=["o2"]
        )
        assert missing[0].verdict == "missing"
        assert await client.get_orchestration_history("o1") == before  # storage untouched

    ok = _cli(storage_connection_string, task_hub_name, "--app", "tests.integration.replay_apps:safe")
    assert ok.returncode == 0, ok.stderr
    assert "2 instance(s) replayed: 2 ok, 0 would break." in ok.stdout
    bad = _cli(storage_connection_string, task_hub_name, "--app", "tests.integration.replay_apps:breaking", "--json")
    assert bad.returncode == 1, bad.stderr
    assert {v["instanceId"]: v["verdict"] for v in json.loads(bad.stdout)} == {"o1": "divergent", "o2": "divergent"}
    human = _cli(storage_connection_string, task_hub_name, "--app", "tests.integration.replay_apps:breaking",
                 "--instance", "o1")
    assert "recorded: call_activity('reserve') #1" in human.stdout
    assert f"new code: call_activity('charge') #1  at {replay_apps.__file__}:{line}" in human.stdout


def _replay_functions_like_a_unit_test(waiting: RecordedHistory, done: RecordedHistory) -> None:
    paused = replay_functions_app(APPS / "replay_v1", waiting)
    assert paused.deterministic and paused.status is OrchestrationStatus.Running and paused.actions == []
    finished = replay_functions_app(APPS / "replay_v1", done)
    assert finished.deterministic and finished.status is OrchestrationStatus.Completed
    assert finished.output == "shipped packed box"
    changed = replay_functions_app(APPS / "replay_v2", done)
    assert not changed.deterministic and changed.divergence is not None and "pack_carefully" in changed.divergence


async def test_functions_app(storage_account: StorageAccount, storage_connection_string: str,
                             task_hub_name: str) -> None:
    async with FunctionsHost.from_path(
        APPS / "replay_v1", storage_account, task_hub_name=task_hub_name, port=0,
        max_queue_polling_interval=timedelta(seconds=1),
    ), await TaskHubClient.open(storage_account, task_hub_name) as client:
        for instance_id in ("s1", "s2"):
            await client.schedule_new_orchestration("shipment", instance_id=instance_id)
            await eventually(lambda i=instance_id: _waiting(client, i), timeout=60, message="shipment waiting")
        await client.raise_event("s2", "go")
        await client.wait_for_completion("s2", timeout=60)
    waiting = parse_history_document(await export_history(storage_account, task_hub_name, "s1"))
    done = parse_history_document(await export_history(storage_account, task_hub_name, "s2"))
    _replay_functions_like_a_unit_test(waiting, done)
    same = await replay_instances(storage_account, task_hub_name,
                                  FunctionsReplayer(load_app(APPS / "replay_v1").orchestrators))
    assert [(v.instance_id, v.verdict) for v in same] == [("s1", "deterministic")]
    changed = await replay_instances(storage_account, task_hub_name,
                                     FunctionsReplayer(load_app(APPS / "replay_v2").orchestrators))
    assert changed[0].verdict == "divergent"
    assert changed[0].recorded == "TaskScheduled pack #0" and changed[0].new == "TaskScheduled pack_carefully #0"
    dropped = await replay_instances(storage_account, task_hub_name,
                                     FunctionsReplayer(load_app(APPS / "replay_v3").orchestrators))
    assert dropped[0].verdict == "divergent" and dropped[0].recorded == "TaskScheduled pack #0"
    assert dropped[0].new == "nothing (the code no longer makes it)"
    cli = _cli(storage_connection_string, task_hub_name, "--app", str(APPS / "replay_v2"))
    assert cli.returncode == 1 and "DIVERGENT" in cli.stdout, cli.stdout + cli.stderr
    bad = _cli(storage_connection_string, task_hub_name, "--app", "no_such_module:register")
    assert bad.returncode == 2
    *banner, line = bad.stderr.strip().splitlines()  # the hub/account line every command prints first
    assert all(b.startswith("using task hub") for b in banner), banner
    assert line.startswith("error: Invalid value for --app: cannot import 'no_such_module'"), line
