"""examples/functions_triggers_app on Azurite: timer, queue and blob triggers beside durable functions.

Everything is observed through storage, as on Azure: the timer's status blob in
``azure-webjobs-hosts``, queue messages (``orders``, ``orders-poison``, ``shipments``, ``audit``),
blobs (``receipts/``, ``archive/``), blob receipts, and orchestration status through the client.
All hosts of this module share one host id (``AzureFunctionsWebHost__hostid``), as the instances
of one deployed app do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from durable_azstorage.functions._timer_schedule import ScheduleStatus, parse_schedule
from durable_azstorage.functions._triggers import TriggerOptions
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

APP = Path(__file__).resolve().parents[2] / "examples" / "functions_triggers_app"
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"
HOST_ID = "trig-" + uuid.uuid4().hex[:10]
FAST = TriggerOptions(lock_recovery_interval=timedelta(seconds=1), blob_polling_interval=timedelta(seconds=1))
STATUS_BLOB = f"timers/{HOST_ID}/Host.Functions.inventory_timer/status"


@pytest.fixture(scope="module", autouse=True)
def shared_host_id() -> Iterator[None]:
    previous = os.environ.get(HOST_ID_SETTING)
    os.environ[HOST_ID_SETTING] = HOST_ID
    yield
    if previous is None:
        del os.environ[HOST_ID_SETTING]
    else:
        os.environ[HOST_ID_SETTING] = previous


@pytest.fixture(scope="module", autouse=True)
async def empty_queues(storage_account: StorageAccount) -> None:
    """The example's queues start empty (a real account keeps them between runs; peeks see 32)."""
    async with storage_account.queue_service() as service:
        for name in ("orders", "orders-poison", "shipments", "audit"):
            try:
                await service.get_queue_client(name).clear_messages()
            except ResourceNotFoundError:
                pass


@asynccontextmanager
async def running(account: StorageAccount, hub: str, app: Path = APP) -> AsyncIterator[FunctionsHost]:
    async with FunctionsHost.from_path(app, account, task_hub_name=hub, port=0, trigger_options=FAST,
                                       max_queue_polling_interval=timedelta(seconds=1)) as host:
        assert host.triggers is not None and host.triggers.host_id == HOST_ID
        yield host


@pytest.fixture
async def host(storage_account: StorageAccount) -> AsyncIterator[FunctionsHost]:
    """One host per test: the trigger listeners of one test never see the next test's work."""
    async with running(storage_account, "tr" + uuid.uuid4().hex[:12]) as started:
        yield started


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _send(account: StorageAccount, queue: str, content: str) -> None:
    async with account.queue_service() as service:
        client = service.get_queue_client(queue)
        try:
            await client.create_queue()
        except ResourceExistsError:
            pass
        await client.send_message(content)


async def _peek(account: StorageAccount, queue: str) -> list[str]:
    """Message texts (base64 decoded when they are base64) currently in ``queue``."""
    async with account.queue_service() as service:
        try:
            messages = await service.get_queue_client(queue).peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
    texts = []
    for message in messages:
        try:
            texts.append(base64.b64decode(message.content, validate=True).decode())
        except ValueError:
            texts.append(message.content)
    return texts


async def _blob(account: StorageAccount, container: str, name: str) -> bytes | None:
    async with account.blob_service() as service:
        try:
            return await (await service.get_blob_client(container, name).download_blob()).readall()
        except ResourceNotFoundError:
            return None


async def _completed(account: StorageAccount, hub: str, instance_id: str, timeout: float = 60) -> Any:
    """The finished instance (it is created by a trigger, so wait for it to exist first)."""
    async with await TaskHubClient.open(account, hub) as client:

        async def exists() -> Any:
            return await client.get_orchestration_state(instance_id)

        await eventually(exists, timeout=timeout, interval=0.2, message=f"{instance_id} created")
        state = await client.wait_for_completion(instance_id, timeout=timeout)
    assert state.runtime_status is not None and state.runtime_status.name == "Completed", state
    return state


# --------------------------------------------------------------------------------- queue → orchestration
async def test_queued_order_runs_the_orchestration_writes_the_receipt_blob_and_fires_the_blob_trigger(
    host: FunctionsHost, storage_account: StorageAccount
) -> None:
    order_id = uuid.uuid4().hex[:8]
    order = {"orderId": order_id, "items": [{"sku": "A", "price": 2.5, "quantity": 2}, {"sku": "B", "price": 1}]}
    await _send(storage_account, "orders", _b64(json.dumps(order)))
    state = await _completed(storage_account, host.settings.task_hub_name, f"order-{order_id}")
    assert json.loads(state.output) == {"orderId": order_id, "total": 6.0,
                                                   "receipt": f"receipts/{order_id}.json"}
    assert json.loads(state.input)["dequeueCount"] == 1
    receipt = json.loads(await _blob(storage_account, "receipts", f"{order_id}.json") or b"null")
    assert receipt == {"orderId": order_id, "total": 6.0, "items": order["items"]}
    assert json.dumps({"orderId": order_id}) in await _peek(storage_account, "shipments")

    async def archived() -> bytes | None:  # blob trigger → blob output + queue output
        return await _blob(storage_account, "archive", f"{order_id}.json")

    assert json.loads(await eventually(archived, timeout=30, interval=0.2, message="receipt archived")) == receipt
    audit = [json.loads(t) for t in await _peek(storage_account, "audit")]
    assert next(a for a in audit if a["blob"] == f"receipts/{order_id}.json")["length"] > 0


async def test_http_function_with_a_queue_output(host: FunctionsHost, storage_account: StorageAccount) -> None:
    order_id = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as http, http.post(
        f"{host.base_url}/api/orders", json={"orderId": order_id, "items": [{"price": 3}]}
    ) as response:
        assert response.status == 202 and (await response.json()) == {"queued": order_id}
    state = await _completed(storage_account, host.settings.task_hub_name, f"order-{order_id}")
    assert json.loads(state.output)["total"] == 3.0


async def test_a_failing_message_is_retried_then_lands_in_the_poison_queue(
    host: FunctionsHost, storage_account: StorageAccount
) -> None:
    marker = f"not an order {uuid.uuid4().hex[:8]}"
    await _send(storage_account, "orders", _b64(marker))
    not_base64 = f"%%raw-{uuid.uuid4().hex[:8]}%%"  # host.json says base64: poisoned without a call
    await _send(storage_account, "orders", not_base64)

    async def poisoned() -> bool:
        texts = await _peek(storage_account, "orders-poison")
        return marker in texts and not_base64 in texts

    await eventually(poisoned, timeout=60, interval=0.3, message="both messages in orders-poison")
    remaining = await _peek(storage_account, "orders")
    assert marker not in remaining and not_base64 not in remaining


# --------------------------------------------------------------------------------- timer
async def _write_status(account: StorageAccount, status: ScheduleStatus) -> None:
    async with account.blob_service() as service:
        container = service.get_container_client("azure-webjobs-hosts")
        try:
            await container.create_container()
        except ResourceExistsError:
            pass
        await container.upload_blob(STATUS_BLOB, status.to_json().encode(), overwrite=True)


async def _read_status(account: StorageAccount) -> ScheduleStatus:
    raw = await _blob(account, "azure-webjobs-hosts", STATUS_BLOB)
    assert raw is not None
    return ScheduleStatus.from_json(raw)


async def test_a_timer_due_while_no_host_ran_fires_once_at_start_up_with_past_due(
    storage_account: StorageAccount,
) -> None:
    schedule = parse_schedule("0 0 */6 * * *")
    now = datetime.now(timezone.utc)
    last = schedule.next_after(now - timedelta(hours=13))  # the last firing a host recorded
    missed = schedule.next_after(last)  # due at least an hour ago, while nothing ran
    assert missed < now
    await _write_status(storage_account, ScheduleStatus(last, missed, last))
    hub = "td" + uuid.uuid4().hex[:12]
    async with running(storage_account, hub):
        state = await _completed(storage_account, hub, "inventory-monitor")
        output = json.loads(state.output)
        assert output["pastDue"] is True and output["checked"] == []
        started_with = json.loads(state.input)
        assert ScheduleStatus.from_json(json.dumps(started_with["scheduleStatus"])).next == missed
        status = await _read_status(storage_account)
        assert status.last >= now and status.next == schedule.next_after(status.last) > now
    # A second start-up: the status is current, nothing is past due, nothing fires.
    async with running(storage_account, hub) as again:
        assert again.triggers is not None
        assert again.triggers.singletons["inventory_timer"].listening
        assert (await _read_status(storage_account)) == status


async def test_the_timer_fires_on_one_host_at_a_time(storage_account: StorageAccount) -> None:
    hub = "ts" + uuid.uuid4().hex[:12]
    first_host = running(storage_account, hub)
    first = await first_host.__aenter__()
    try:
        async with running(storage_account, hub) as second:
            assert first.triggers is not None and second.triggers is not None
            locks = [first.triggers.singletons["inventory_timer"], second.triggers.singletons["inventory_timer"]]
            assert [lock.listening for lock in locks] == [True, False]
            await first_host.__aexit__(None, None, None)  # releases the lease; the other host takes over
            first_host = None
            await eventually(lambda: locks[1].listening, timeout=10, interval=0.1, message="second host takes over")
    finally:
        if first_host is not None:
            await first_host.__aexit__(None, None, None)


async def test_a_disabled_trigger_does_not_listen(storage_account: StorageAccount,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobs.inventory_timer.Disabled", "true")  # the app setting the host reads
    async with running(storage_account, "tx" + uuid.uuid4().hex[:12]) as host:
        assert host.triggers is not None
        assert "inventory_timer" not in host.triggers.singletons and "order_intake" in host.triggers.listeners


# --------------------------------------------------------------------------------- blob receipts
async def test_a_blob_fires_once_across_restarts_and_again_when_overwritten(storage_account: StorageAccount) -> None:
    name = f"once-{uuid.uuid4().hex[:8]}"
    async with storage_account.blob_service() as service:
        container = service.get_container_client("receipts")
        try:
            await container.create_container()
        except ResourceExistsError:
            pass
        await container.upload_blob(f"{name}.json", b'{"v": 1}')

    async def audits() -> list[dict[str, Any]]:
        found = [json.loads(t) for t in await _peek(storage_account, "audit")]
        return [a for a in found if a["blob"] == f"receipts/{name}.json"]

    async with running(storage_account, "tb" + uuid.uuid4().hex[:12]):
        await eventually(audits, timeout=30, interval=0.2, message="first firing")
    # Same host id after a restart: the receipt in azure-webjobs-hosts says this version is done.
    async with running(storage_account, "tb" + uuid.uuid4().hex[:12]) as again:
        assert again.triggers is not None
        listener: Any = again.triggers.listeners["receipt_archived"]
        await listener.scan()
        await listener.scan()
        assert len(await audits()) == 1
        async with storage_account.blob_service() as service:
            await service.get_blob_client("receipts", f"{name}.json").upload_blob(b'{"v": 2}', overwrite=True)
        await eventually(lambda: _count_is(audits, 2), timeout=30, interval=0.2, message="new version fires")
    assert await _blob(storage_account, "archive", f"{name}.json") == b'{"v": 2}'


async def test_two_hosts_fire_each_blob_once(storage_account: StorageAccount) -> None:
    names = [f"pair-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    hub = "tp" + uuid.uuid4().hex[:12]
    async with running(storage_account, hub), running(storage_account, hub):
        async with storage_account.blob_service() as service:
            for name in names:
                await service.get_blob_client("receipts", f"{name}.json").upload_blob(b"{}", overwrite=True)

        async def audited() -> list[str]:
            found = [json.loads(t)["blob"] for t in await _peek(storage_account, "audit")]
            pairs = sorted(b for b in found if b.startswith("receipts/pair-"))
            return pairs if set(pairs) == {f"receipts/{n}.json" for n in names} else []

        pairs = await eventually(audited, timeout=60, interval=0.3, message="8 blobs fired")
        assert pairs == sorted(f"receipts/{n}.json" for n in names)  # each once, by one of the two hosts


async def _count_is(probe: Any, count: int) -> bool:
    return len(await probe()) == count


# --------------------------------------------------------------------------------- the CLI
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_durable_azstorage_run_serves_the_triggers(
    storage_connection_string: str, storage_account: StorageAccount, tmp_path: Path
) -> None:
    port, hub = _free_port(), "cl" + uuid.uuid4().hex[:12]
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    log = (tmp_path / "run.log").open("w+")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable_azstorage.cli", "run", str(APP), "--port", str(port), "--task-hub-name", hub,
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        order_id = uuid.uuid4().hex[:8]
        await _send(storage_account, "orders", _b64(json.dumps({"orderId": order_id, "items": [{"price": 1}]})))

        async def receipt() -> bytes | None:
            if proc.returncode is not None:
                log.seek(0)
                raise AssertionError(f"durable-azstorage run exited with {proc.returncode}:\n{log.read()}")
            return await _blob(storage_account, "receipts", f"{order_id}.json")

        assert json.loads(await eventually(receipt, timeout=60, interval=0.3, message="receipt"))["total"] == 1.0
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert proc.returncode == 0, output
    assert "inventory_timer: timerTrigger" in output and "order_intake: queueTrigger orders" in output


async def test_a_killed_timer_host_is_replaced_when_its_lease_expires(
    storage_connection_string: str, storage_account: StorageAccount, tmp_path: Path
) -> None:
    """kill -9 the host that holds the timer lock: another host fires the schedule after the lease ends.

    host.json ``singleton.listenerLockPeriod`` is 15 s (the shortest blob lease) and the
    recovery poll 1 s, so the take-over is observed in about 16 s instead of a minute.
    """
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["singleton"] = {"listenerLockPeriod": "00:00:15", "listenerLockRecoveryPollingInterval": "00:00:01"}
    (app / "host.json").write_text(json.dumps(host_json))
    port, hub = _free_port(), "tk" + uuid.uuid4().hex[:12]
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    log = (tmp_path / "run.log").open("w+")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable_azstorage.cli", "-v", "run", str(app), "--port", str(port),
        "--task-hub-name", hub,
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    lock = f"locks/{HOST_ID}/Host.Functions.inventory_timer.Listener"
    try:
        async def leased() -> bool:
            assert proc.returncode is None, "durable-azstorage run exited early"
            async with storage_account.blob_service() as service:
                try:
                    props = await service.get_blob_client("azure-webjobs-hosts", lock).get_blob_properties()
                except ResourceNotFoundError:
                    return False
            return bool(props.lease.state == "leased")

        try:
            await eventually(leased, timeout=30, interval=0.2, message="the subprocess holds the timer lock")
        except AssertionError as exc:
            log.seek(0)
            async with storage_account.blob_service() as service:
                blobs = [(b.name, b.lease.state) async for b in
                         service.get_container_client("azure-webjobs-hosts").list_blobs(name_starts_with="locks/")]
            raise AssertionError(f"{exc}\n{log.read()}\n{blobs}") from exc
        async with running(storage_account, hub, app) as other:
            assert other.triggers is not None
            singleton = other.triggers.singletons["inventory_timer"]
            assert not singleton.listening
            proc.kill()  # SIGKILL: no release, the lease has to run out
            await proc.wait()
            killed_at = asyncio.get_running_loop().time()
            await eventually(lambda: singleton.listening, timeout=40, interval=0.2, message="take-over after kill -9")
            waited = asyncio.get_running_loop().time() - killed_at
            assert waited < 20, f"took {waited:.1f} s (lease 15 s + recovery poll 1 s expected)"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
