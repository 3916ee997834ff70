"""Instance verbs: the ``func durable`` ones (start-new, get-runtime-status, get-history, get-instances,
raise-event, terminate, rewind, purge-history, delete-task-hub) and the ones it lacks (suspend,
resume, restart, purge, wait)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import click

from ..aio import TaskHubClient
from ..client import format_time, raw_event_dict, status_payload
from ..codec.names import TaskHubNames
from ..errors import InstanceNotFoundError
from ..model import InstanceQuery, OrchestrationState, OrchestrationStatus
from ..storage import TaskHubResources
from ._common import (
    UTC_DATETIME,
    CliError,
    Verbs,
    as_utc,
    emit,
    parse_statuses,
    payload_arg,
    print_table,
    resolve_account,
    run_async,
    status_name,
    with_client,
)
from ._progress import progress_line
from ._startup import HubState, check_storage, output

__all__ = ["verbs"]

verbs = Verbs()


@verbs.command("start-new")
@click.option("--function-name", required=True, help="Orchestrator name.")
@click.option("--id", "instance_id", help="Instance id (default: a new GUID).")
@click.option("--input", "input_", help="JSON input, or @file.json.")
@click.option("--raw-input", is_flag=True, help="Send --input as a string, not JSON.")
def start_new(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    function_name: str, instance_id: str | None, input_: str | None, raw_input: bool,
) -> None:
    """Start an orchestration (creating the task hub if needed, as DTAS's start does)."""
    payload = payload_arg(input_, raw=raw_input)
    account = resolve_account(connection, setting)

    async def start() -> tuple[str, HubState]:
        hub = await check_storage(account, task_hub_name)
        async with await TaskHubClient.open(account, task_hub_name) as c:
            if not hub.exists:
                await c.create_task_hub()
                output.say(f"created task hub {task_hub_name}")
            return await c.schedule_new_orchestration(function_name, instance_id=instance_id, raw_input=payload), hub

    new_id, hub = run_async(start())
    now = format_time(datetime.now(timezone.utc))
    emit(as_json, {"id": new_id}, f"Started '{function_name}' at {now}. Instance ID: '{new_id}'.")
    if not hub.ever_served:
        output.say(f"note: no worker has ever served task hub {task_hub_name}; the instance stays Pending until one "
                   f"runs on it (durable-azstorage worker/run with --task-hub-name {task_hub_name})")
    elif not hub.served_now:
        output.say(f"note: no worker holds a lease on task hub {task_hub_name} now (last renewal "
                   f"{format_time(hub.last_renewal)}); the instance stays Pending until one runs")


@verbs.command("get-runtime-status")
@click.option("--id", "instance_id", required=True)
@click.option("--show-input", is_flag=True)
@click.option("--show-output", is_flag=True)
def get_runtime_status(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    instance_id: str, show_input: bool, show_output: bool,
) -> None:
    """Print an instance's status."""
    state = run_async(with_client(connection, setting, task_hub_name, lambda c: c.get_orchestration_state(instance_id)))
    if state is None:
        raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
    payload = status_payload(state, show_input=show_input)
    if not show_output:
        payload["output"] = None
    emit(as_json, payload, json.dumps(payload, indent=2, ensure_ascii=False))

@verbs.command("get-history")
@click.option("--id", "instance_id", required=True)
def get_history(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, instance_id: str
) -> None:
    """Print an instance's history events."""
    events = run_async(
        with_client(connection, setting, task_hub_name, lambda c: c.get_orchestration_history(instance_id))
    )
    data = [raw_event_dict(e) for e in events]
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))

@verbs.command("get-instances")
@click.option("--created-after", type=UTC_DATETIME, help="ISO 8601, UTC.")
@click.option("--created-before", type=UTC_DATETIME, help="ISO 8601, UTC.")
@click.option("--runtime-status", help='e.g. "running completed"')
@click.option("--instance-id-prefix")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--continuation-token")
@click.option("--all-pages", is_flag=True, help="Follow continuation tokens to the end.")
def get_instances(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    created_after: datetime | None, created_before: datetime | None, runtime_status: str | None,
    instance_id_prefix: str | None, top: int, continuation_token: str | None, all_pages: bool,
) -> None:
    """List instances, one page (or all pages)."""
    statuses = parse_statuses(runtime_status)

    async def query(c: TaskHubClient) -> tuple[list[OrchestrationState], str | None]:
        found: list[OrchestrationState] = []
        token = continuation_token
        filters = InstanceQuery.of(
            runtime_status=statuses, created_from=as_utc(created_after), created_to=as_utc(created_before),
            instance_id_prefix=instance_id_prefix, page_size=top,
        )
        while True:
            page = await c.query_instances(filters, continuation_token=token)
            found += page.instances
            token = page.continuation_token
            if not all_pages or token is None:
                return found, token

    states, token = run_async(with_client(connection, setting, task_hub_name, query))

    def human() -> None:
        print_table(states)
        click.echo(f"Continuation token for next set of results: '{token or ''}'")

    emit(as_json, {"instances": [status_payload(s) for s in states], "continuationToken": token}, human)

@verbs.command("raise-event")
@click.option("--id", "instance_id", required=True)
@click.option("--event-name", default=None, help="Default: Event_<guid>.")
@click.option("--event-data", help="JSON, or @file.json.")
@click.option("--raw-event-data", is_flag=True, help="Send --event-data as a string, not JSON.")
def raise_event(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    instance_id: str, event_name: str | None, event_data: str | None, raw_event_data: bool,
) -> None:
    """Send an external event to an instance."""
    data = payload_arg(event_data, raw=raw_event_data, option="--event-data")

    name = event_name or f"Event_{uuid.uuid4()}"
    run_async(with_client(connection, setting, task_hub_name,
                      lambda c: c.raise_event(instance_id, name, raw_data=data)))
    emit(as_json, {"id": instance_id, "eventName": name}, f"Raised event '{name}' to instance '{instance_id}'.")

def _simple(name: str, verb: str, op: Callable[[TaskHubClient, str, str | None], Awaitable[Any]]) -> None:
    @verbs.command(name, help=f"{verb.split()[0]} an instance (a worker applies it asynchronously).")
    @click.option("--id", "instance_id", required=True)
    @click.option("--reason")
    def run(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        instance_id: str, reason: str | None,
    ) -> None:
        run_async(with_client(connection, setting, task_hub_name, lambda c: op(c, instance_id, reason)))
        emit(as_json, {"id": instance_id, "operation": name}, f"{verb} instance '{instance_id}'.")


_simple("terminate", "Terminate requested for", lambda c, i, r: c.terminate(i, r))
_simple("suspend", "Suspend requested for", lambda c, i, r: c.suspend(i, r))
_simple("resume", "Resume requested for", lambda c, i, r: c.resume(i, r))
_simple("rewind", "Rewind requested for", lambda c, i, r: c.rewind(i, r))

@verbs.command("restart")
@click.option("--id", "instance_id", required=True)
@click.option("--new-instance-id/--same-instance-id", default=False, show_default=True)
def restart(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    instance_id: str, new_instance_id: bool,
) -> None:
    """Start an instance's orchestration again with its original input."""
    new_id = run_async(with_client(connection, setting, task_hub_name,
                               lambda c: c.restart(instance_id, new_instance_id=new_instance_id)))
    emit(as_json, {"id": new_id}, f"Restarted '{instance_id}'. Instance ID: '{new_id}'.")

@verbs.command("purge")
@click.option("--id", "instance_id", required=True)
def purge(connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, instance_id: str) -> None:
    """Delete one instance's history, blobs and status row (any status)."""
    result = run_async(with_client(connection, setting, task_hub_name, lambda c: c.purge_instance(instance_id)))
    emit(as_json, {"instancesDeleted": result.instances_deleted, "rowsDeleted": result.rows_deleted},
          f"Instances deleted: {result.instances_deleted}\nRows deleted: {result.rows_deleted}")

@verbs.command("purge-history")
@click.option("--created-after", type=UTC_DATETIME, help="Default: the beginning of time.")
@click.option("--created-before", type=UTC_DATETIME)
@click.option("--runtime-status", help="completed terminated canceled failed (non-terminal ones are ignored)")
def purge_history(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    created_after: datetime | None, created_before: datetime | None, runtime_status: str | None,
) -> None:
    """Purge finished instances created in a time range."""
    with progress_line("purging", enabled=not as_json) as line:
        result = run_async(with_client(connection, setting, task_hub_name, lambda c: c.purge_instances(
            created_from=as_utc(created_after) or datetime(1601, 1, 1, tzinfo=timezone.utc),
            created_to=as_utc(created_before), runtime_status=parse_statuses(runtime_status),
            progress=lambda n: line.update(f"{n} instances purged"))))
    emit(as_json, {"instancesDeleted": result.instances_deleted, "rowsDeleted": result.rows_deleted},
          f"Instances deleted: {result.instances_deleted}\nRows deleted: {result.rows_deleted}")

@verbs.command("wait")
@click.option("--id", "instance_id", required=True)
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds; default: wait forever.")
def wait(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    instance_id: str, timeout: float | None,
) -> None:
    """Wait for an instance to finish: exit 0 Completed, 1 Failed/Terminated/Canceled, 2 error or timeout."""
    last: list[OrchestrationState | None] = [None]
    with progress_line(f"waiting for {instance_id}", enabled=not as_json) as line:
        def show(state: OrchestrationState | None) -> None:
            last[0] = state
            line.update(status_name(state))

        try:
            state = run_async(with_client(connection, setting, task_hub_name, lambda c: c.wait_for_completion(
                instance_id, timeout=timeout, on_poll=show)))
        except TimeoutError:
            raise CliError(f"instance {instance_id!r} did not finish within {timeout or 0:g}s (it is "
                           f"{status_name(last[0])}); wait longer with --timeout") from None
    payload = status_payload(state)
    human = f"Instance '{instance_id}' is {status_name(state)}."
    if payload.get("output") is not None:
        human += f" Output: {json.dumps(payload['output'], ensure_ascii=False)}"
    emit(as_json, payload, human)
    if state.runtime_status != OrchestrationStatus.Completed:
        sys.exit(1)


@verbs.command("delete-task-hub")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_task_hub(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, yes: bool
) -> None:
    """Delete every table, queue and container of the task hub."""
    if not yes and not as_json:
        click.confirm(f"Delete task hub {task_hub_name!r} and all its data?", abort=True)
    account = resolve_account(connection, setting)
    existed = run_async(check_storage(account, task_hub_name)).exists
    run_async(TaskHubResources(account, TaskHubNames(task_hub_name)).delete())  # also any leftovers
    if not existed:
        emit(as_json, {"deleted": None},
             f"Task hub '{task_hub_name}' does not exist in account {account.label}; nothing to delete.")
        return
    emit(as_json, {"deleted": task_hub_name}, f"Task hub '{task_hub_name}' deleted.")
