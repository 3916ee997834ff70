"""``durable-azstorage`` management verbs: the ``func durable`` ones and the ones it lacks.

Option names follow Azure Functions Core Tools (ecosystem.md §2). Output is a table (or a
sentence) for people and, with ``--json``, the camelCase JSON of the HTTP API for scripts.
Errors are one line on stderr with exit code 2 (see ``cli.main``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from ._cli_progress import progress_line
from .app_files import AppFiles, load_app_files
from .client._async_client import TaskHubClient
from .client._payloads import format_time, raw_event_dict, status_payload
from .connection import StorageAccount
from .errors import ConfigurationError, InstanceNotFoundError
from .model import OrchestrationState, OrchestrationStatus

__all__ = ["register"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_HUB = "TestHubName"
"""The Durable Functions extension's default (``DurableTaskOptions.DefaultHubName``)."""


def resolve_account(connection: str | None, setting: str | None) -> StorageAccount:
    """A connection string, or the name of a setting (``AzureWebJobsStorage`` by default)."""
    if connection and "=" in connection:
        return StorageAccount.from_connection_string(connection)
    return StorageAccount.from_settings(name=connection or setting or "AzureWebJobsStorage")


def _load_app_dir(ctx: click.Context, _param: click.Parameter, value: Path) -> Path:
    """Read host.json / local.settings.json first, so the other options can default from them."""
    files = load_app_files(value)
    files.apply_local_values()
    ctx.meta["durable_azstorage.app_files"] = files
    return value


def _app_files(ctx: click.Context) -> AppFiles | None:
    files = ctx.meta.get("durable_azstorage.app_files")
    return files if isinstance(files, AppFiles) else None


def _default_hub(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    """``--task-hub-name`` > ``DURABLE_TASK_HUB`` > host.json ``hubName`` > ``TestHubName``."""
    if value:
        return value
    files = _app_files(ctx)
    from_host = files.task_hub_name() if files is not None else None
    return from_host or DEFAULT_HUB


def _default_setting(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        return value
    files = _app_files(ctx)
    return files.connection_setting() if files is not None else None


def _common(fn: F) -> F:
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(fn)
    fn = click.option(
        "--task-hub-name", envvar="DURABLE_TASK_HUB", callback=_default_hub,
        help=f"Task hub (default: hubName of host.json, else {DEFAULT_HUB}).",
    )(fn)
    fn = click.option(
        "--connection-string-setting", "setting", callback=_default_setting,
        help="Name of the setting holding the connection (Core Tools; default: host.json, else AzureWebJobsStorage).",
    )(fn)
    fn = click.option(
        "--connection",
        help="Connection string or setting name (default: AzureWebJobsStorage, or AzureWebJobsStorage__accountName).",
    )(fn)
    fn = click.option(
        "--app-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
        is_eager=True, expose_value=False, callback=_load_app_dir,
        help="Functions app folder whose host.json and local.settings.json supply defaults.",
    )(fn)
    return fn


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise click.UsageError(str(exc)) from exc


async def _with_client(
    connection: str | None, setting: str | None, hub: str, action: Callable[[TaskHubClient], Awaitable[T]]
) -> T:
    async with await TaskHubClient.open(resolve_account(connection, setting), hub) as client:
        return await action(client)


def _emit(as_json: bool, data: Any, human: str | Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif callable(human):
        human()
    else:
        click.echo(human)


def _payload_arg(value: str | None) -> str | None:
    """Inline JSON or ``@path/to/file.json``; plain text becomes a JSON string."""
    if value is None:
        return None
    if value.startswith("@"):
        value = Path(value[1:]).read_text(encoding="utf-8")
    try:
        json.loads(value)
    except ValueError:
        return json.dumps(value)
    return value


def _table(states: list[OrchestrationState]) -> None:
    rows = [
        (s.instance_id, s.name or "", s.runtime_status.name if s.runtime_status else "?", format_time(s.created_time))
        for s in states
    ]
    header = ("INSTANCE ID", "NAME", "STATUS", "CREATED")
    widths = [max(len(str(r[i] or "")) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(str(c or "").ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _statuses(text: str | None) -> list[OrchestrationStatus] | None:
    """Space- or comma-separated, case-insensitive (Core Tools); unknown names are an error."""
    if not text:
        return None
    by_lower = {name.lower(): status for name, status in OrchestrationStatus.__members__.items()}
    out = []
    for part in text.replace(",", " ").split():
        if part.lower() not in by_lower:
            raise click.BadParameter(
                f"unknown status {part!r}; use {', '.join(OrchestrationStatus.__members__)}",
                param_hint="--runtime-status",
            )
        out.append(by_lower[part.lower()])
    return out


def _status_name(state: OrchestrationState | None) -> str:
    if state is None:
        return "not found"
    return state.runtime_status.name if state.runtime_status is not None else "unknown"


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def register(cli: click.Group) -> None:
    """Add the management verbs to the root command group."""

    def command(name: str, help: str | None = None) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            cli.command(name, help=help)(_common(fn))
            return fn

        return deco

    @command("start-new")
    @click.option("--function-name", required=True, help="Orchestrator name.")
    @click.option("--id", "instance_id", help="Instance id (default: a new GUID).")
    @click.option("--input", "input_", help="JSON input, or @file.json.")
    def start_new(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        function_name: str, instance_id: str | None, input_: str | None,
    ) -> None:
        """Start an orchestration (creating the task hub if needed, as DTAS's start does)."""
        from .storage.taskhub import TaskHub

        async def start(c: TaskHubClient) -> str:
            await TaskHub(c._hub.account, c._hub.names).create()
            return await c.schedule_new_orchestration(
                function_name, instance_id=instance_id, raw_input=_payload_arg(input_)
            )

        new_id = _run(_with_client(connection, setting, task_hub_name, start))
        now = format_time(datetime.now(timezone.utc))
        _emit(as_json, {"id": new_id}, f"Started '{function_name}' at {now}. Instance ID: '{new_id}'.")

    @command("get-runtime-status")
    @click.option("--id", "instance_id", required=True)
    @click.option("--show-input", is_flag=True)
    @click.option("--show-output", is_flag=True)
    def get_runtime_status(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        instance_id: str, show_input: bool, show_output: bool,
    ) -> None:
        """Print an instance's status."""
        state = _run(_with_client(connection, setting, task_hub_name, lambda c: c.get_orchestration_state(instance_id)))
        if state is None:
            raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
        payload = status_payload(state, show_input=show_input)
        if not show_output:
            payload["output"] = None
        _emit(as_json, payload, json.dumps(payload, indent=2, ensure_ascii=False))

    @command("get-history")
    @click.option("--id", "instance_id", required=True)
    def get_history(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, instance_id: str
    ) -> None:
        """Print an instance's history events."""
        events = _run(
            _with_client(connection, setting, task_hub_name, lambda c: c.get_orchestration_history(instance_id))
        )
        data = [raw_event_dict(e) for e in events]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    @command("get-instances")
    @click.option("--created-after", type=click.DateTime(), help="ISO 8601, UTC.")
    @click.option("--created-before", type=click.DateTime(), help="ISO 8601, UTC.")
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
        statuses = _statuses(runtime_status)

        async def query(c: TaskHubClient) -> tuple[list[OrchestrationState], str | None]:
            found: list[OrchestrationState] = []
            token = continuation_token
            while True:
                page = await c.query_instances(
                    runtime_status=statuses, created_from=_utc(created_after), created_to=_utc(created_before),
                    instance_id_prefix=instance_id_prefix, page_size=top, continuation_token=token,
                )
                found += page.instances
                token = page.continuation_token
                if not all_pages or token is None:
                    return found, token

        states, token = _run(_with_client(connection, setting, task_hub_name, query))

        def human() -> None:
            _table(states)
            click.echo(f"Continuation token for next set of results: '{token or ''}'")

        _emit(as_json, {"instances": [status_payload(s) for s in states], "continuationToken": token}, human)

    @command("raise-event")
    @click.option("--id", "instance_id", required=True)
    @click.option("--event-name", default=None, help="Default: Event_<guid>.")
    @click.option("--event-data", help="JSON, or @file.json.")
    def raise_event(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        instance_id: str, event_name: str | None, event_data: str | None,
    ) -> None:
        """Send an external event to an instance."""
        import uuid

        name = event_name or f"Event_{uuid.uuid4()}"
        _run(_with_client(connection, setting, task_hub_name,
                          lambda c: c.raise_event(instance_id, name, raw_data=_payload_arg(event_data))))
        _emit(as_json, {"id": instance_id, "eventName": name}, f"Raised event '{name}' to instance '{instance_id}'.")

    def _simple(name: str, verb: str, op: Callable[[TaskHubClient, str, str | None], Awaitable[Any]]) -> None:
        @command(name, help=f"{verb.split()[0]} an instance (a worker applies it asynchronously).")
        @click.option("--id", "instance_id", required=True)
        @click.option("--reason")
        def run(
            connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
            instance_id: str, reason: str | None,
        ) -> None:
            _run(_with_client(connection, setting, task_hub_name, lambda c: op(c, instance_id, reason)))
            _emit(as_json, {"id": instance_id, "operation": name}, f"{verb} instance '{instance_id}'.")


    _simple("terminate", "Terminate requested for", lambda c, i, r: c.terminate(i, r))
    _simple("suspend", "Suspend requested for", lambda c, i, r: c.suspend(i, r))
    _simple("resume", "Resume requested for", lambda c, i, r: c.resume(i, r))
    _simple("rewind", "Rewind requested for", lambda c, i, r: c.rewind(i, r))

    @command("restart")
    @click.option("--id", "instance_id", required=True)
    @click.option("--new-instance-id/--same-instance-id", default=False, show_default=True)
    def restart(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        instance_id: str, new_instance_id: bool,
    ) -> None:
        """Start an instance's orchestration again with its original input."""
        new_id = _run(_with_client(connection, setting, task_hub_name,
                                   lambda c: c.restart(instance_id, new_instance_id=new_instance_id)))
        _emit(as_json, {"id": new_id}, f"Restarted '{instance_id}'. Instance ID: '{new_id}'.")

    @command("purge")
    @click.option("--id", "instance_id", required=True)
    def purge(connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, instance_id: str) -> None:
        """Delete one instance's history, blobs and status row (any status)."""
        result = _run(_with_client(connection, setting, task_hub_name, lambda c: c.purge_instance(instance_id)))
        _emit(as_json, {"instancesDeleted": result.instances_deleted, "rowsDeleted": result.rows_deleted},
              f"Instances deleted: {result.instances_deleted}\nRows deleted: {result.rows_deleted}")

    @command("purge-history")
    @click.option("--created-after", type=click.DateTime(), help="Default: the beginning of time.")
    @click.option("--created-before", type=click.DateTime())
    @click.option("--runtime-status", help="completed terminated canceled failed (non-terminal ones are ignored)")
    def purge_history(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        created_after: datetime | None, created_before: datetime | None, runtime_status: str | None,
    ) -> None:
        """Purge finished instances created in a time range."""
        with progress_line("purging", enabled=not as_json) as line:
            result = _run(_with_client(connection, setting, task_hub_name, lambda c: c.purge_instances(
                created_from=_utc(created_after) or datetime(1601, 1, 1, tzinfo=timezone.utc),
                created_to=_utc(created_before), runtime_status=_statuses(runtime_status),
                progress=lambda n: line.update(f"{n} instances purged"))))
        _emit(as_json, {"instancesDeleted": result.instances_deleted, "rowsDeleted": result.rows_deleted},
              f"Instances deleted: {result.instances_deleted}\nRows deleted: {result.rows_deleted}")

    @command("wait")
    @click.option("--id", "instance_id", required=True)
    @click.option("--timeout", type=click.FloatRange(min=0), help="Seconds; default: wait forever.")
    def wait(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        instance_id: str, timeout: float | None,
    ) -> None:
        """Wait for an instance to finish; exit code 1 when it did not complete successfully."""
        with progress_line(f"waiting for {instance_id}", enabled=not as_json) as line:
            def show(state: OrchestrationState | None) -> None:
                line.update(_status_name(state))

            try:
                state = _run(_with_client(connection, setting, task_hub_name, lambda c: c.wait_for_completion(
                    instance_id, timeout=timeout, on_poll=show)))
            except TimeoutError as exc:
                raise click.ClickException(str(exc)) from exc
        _emit(as_json, status_payload(state),
              f"Instance '{instance_id}' is {_status_name(state)}.")
        if state.runtime_status != OrchestrationStatus.Completed:
            sys.exit(1)

    @command("delete-task-hub")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def delete_task_hub(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, yes: bool
    ) -> None:
        """Delete every table, queue and container of the task hub."""
        from .storage.names import TaskHubNames
        from .storage.taskhub import TaskHub

        if not yes and not as_json:
            click.confirm(f"Delete task hub {task_hub_name!r} and all its data?", abort=True)
        _run(TaskHub(resolve_account(connection, setting), TaskHubNames(task_hub_name)).delete())
        _emit(as_json, {"deleted": task_hub_name}, f"Task hub '{task_hub_name}' deleted.")

    @command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=7071, show_default=True)
    @click.option("--key", envvar="DURABLE_AZSTORAGE_HTTP_KEY", help="Required when not bound to loopback.")
    def serve(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        host: str, port: int, key: str | None,
    ) -> None:
        """Serve the Durable Functions HTTP management API (and the dashboard) for the task hub."""
        from .http import serve as serve_api

        click.echo(f"serving {task_hub_name} on http://{host}:{port}/runtime/webhooks/durabletask", err=True)
        click.echo(f"dashboard: http://{host}:{port}/dashboard/", err=True)
        try:
            _run(serve_api(resolve_account(connection, setting), task_hub_name, host=host, port=port, key=key))
        except KeyboardInterrupt:
            pass

    _register_poison(cli)
    from ._cli_entities import register_entities  # builds on this module's helpers

    register_entities(cli)


def _register_poison(cli: click.Group) -> None:
    @cli.group()
    def poison() -> None:
        """Quarantined (poison) messages: list, requeue, drop."""

    @poison.command("list")
    @_common
    @click.option("--queue", help="Only this queue.")
    def poison_list(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, queue: str | None
    ) -> None:
        """List quarantined messages."""
        async def collect(c: TaskHubClient) -> list[dict[str, Any]]:
            return [
                {"queue": r.queue_name, "messageId": r.message_id, "instanceId": r.instance_id,
                 "eventType": r.event_type, "dequeueCount": r.dequeue_count, "reason": r.reason,
                 "quarantinedAt": format_time(r.quarantined_at)}
                async for r in c._hub.poison.list(queue)
            ]

        records = _run(_with_client(connection, setting, task_hub_name, collect))

        def human() -> None:
            for r in records:
                click.echo(f"{r['queue']}  {r['messageId']}  {r['instanceId'] or '-'}  {r['eventType'] or '-'}  "
                           f"{r['reason']}")
            click.echo(f"{len(records)} quarantined message(s)")

        _emit(as_json, records, human)

    def _one(name: str, requeue: bool) -> None:
        @poison.command(name, help="Put a quarantined message back on its queue." if requeue else "Delete it.")
        @_common
        @click.option("--queue", required=True)
        @click.option("--message-id", required=True)
        def run(
            connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, queue: str, message_id: str
        ) -> None:
            async def act(c: TaskHubClient) -> None:
                record = await c._hub.poison.get(queue, message_id)
                if record is None:
                    raise InstanceNotFoundError(f"no quarantined message {message_id!r} in queue {queue!r}")
                if requeue:
                    await c._hub.queue_service.get_queue_client(queue).send_message(record.body)
                await c._hub.poison.remove(queue, message_id)

            _run(_with_client(connection, setting, task_hub_name, act))
            _emit(as_json, {"queue": queue, "messageId": message_id, "operation": name},
                  f"{'Requeued' if requeue else 'Dropped'} message '{message_id}' of queue '{queue}'.")


    _one("requeue", True)
    _one("drop", False)
