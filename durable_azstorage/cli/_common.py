"""What every CLI verb shares: the common options, the client, one-line errors and output.

Option names follow Azure Functions Core Tools (``func durable``). Output is a table (or a
sentence) for people and, with ``--json``, the camelCase JSON of the HTTP API for scripts.
Errors are one line on stderr with exit code 2 (see :func:`durable_azstorage.cli.main`).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from ..aio import TaskHubClient
from ..app_files import AppFiles, load_app_files
from ..client import format_time
from ..connection import StorageAccount
from ..errors import ConfigurationError
from ..model import OrchestrationState, OrchestrationStatus
from ..settings import DEFAULT_TASK_HUB_NAME
from ._startup import announce, check_storage, hub_missing_error

__all__ = [
    "CliError",
    "DEFAULT_HUB",
    "UTC_DATETIME",
    "Verbs",
    "as_utc",
    "common_options",
    "emit",
    "host_settings",
    "load_register_function",
    "parse_statuses",
    "payload_arg",
    "print_table",
    "resolve_account",
    "run_async",
    "status_name",
    "with_client",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_HUB = DEFAULT_TASK_HUB_NAME
"""The Durable Functions extension's local default; see :data:`durable_azstorage.settings.DEFAULT_TASK_HUB_NAME`."""


_ACCOUNTS: dict[tuple[str | None, str | None], StorageAccount] = {}


def resolve_account(connection: str | None, setting: str | None) -> StorageAccount:
    """A connection string, or the name of a setting (``AzureWebJobsStorage`` by default).

    One account per command run: the start-up line and the command itself use the same one
    (an identity-based account holds one credential).
    """
    key = (connection, setting)
    if key not in _ACCOUNTS:
        if connection and "=" in connection:
            _ACCOUNTS[key] = StorageAccount.from_connection_string(connection)
        else:
            _ACCOUNTS[key] = StorageAccount.from_settings(name=connection or setting or "AzureWebJobsStorage")
    return _ACCOUNTS[key]


def _load_app_dir(ctx: click.Context, _param: click.Parameter, value: Path) -> Path:
    """Read host.json / local.settings.json first, so the other options can default from them."""
    files = load_app_files(value)
    files.apply_local_values()
    ctx.meta["durable_azstorage.app_files"] = files
    return value


def app_files_of(ctx: click.Context) -> AppFiles | None:
    files = ctx.meta.get("durable_azstorage.app_files")
    return files if isinstance(files, AppFiles) else None


def _default_hub(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    """``--task-hub-name`` > ``DURABLE_TASK_HUB`` > host.json ``hubName`` > ``TestHubName``."""
    if value:
        return value
    files = app_files_of(ctx)
    from_host = files.task_hub_name() if files is not None else None
    return from_host or DEFAULT_HUB


def _default_setting(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        return value
    files = app_files_of(ctx)
    return files.connection_setting() if files is not None else None


def _announcing(fn: F) -> F:
    """Every verb says where it works before it does anything (stderr; ``-q`` hides it)."""

    @functools.wraps(fn)
    def announced(**params: Any) -> Any:
        announce(params["task_hub_name"], resolve_account(params["connection"], params["setting"]))
        return fn(**params)

    return announced  # type: ignore[return-value]


def common_options(fn: F) -> F:
    fn = _announcing(fn)
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


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise click.UsageError(str(exc)) from exc


async def with_client(
    connection: str | None,
    setting: str | None,
    hub: str,
    action: Callable[[TaskHubClient], Awaitable[T]],
) -> T:
    """Check the account answers and the hub exists, then run ``action`` (the verb said where already)."""
    account = resolve_account(connection, setting)
    state = await check_storage(account, hub)
    if not state.exists:
        raise hub_missing_error(hub, account)
    async with await TaskHubClient.open(account, hub) as client:
        return await action(client)


def emit(as_json: bool, data: Any, human: str | Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif callable(human):
        human()
    else:
        click.echo(human)


def payload_arg(value: str | None, *, raw: bool = False, option: str = "--input") -> str | None:
    """Inline JSON or ``@path/to/file.json``, checked here; ``raw`` sends the text as a JSON string.

    Text that is not JSON is refused rather than guessed at: ``--input hello`` and
    ``--input '{"a":1'`` look alike to a shell user, and only one of them is a typo.
    """
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint=option) from None
        except UnicodeDecodeError:
            raise click.BadParameter(f"{path} is not UTF-8 text", param_hint=option) from None
    if raw:
        return json.dumps(value, ensure_ascii=False)
    try:
        json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"not valid JSON ({exc}); quote text as JSON ('\"hello\"') or pass --raw-input to send it as a string",
            param_hint=option,
        ) from None
    return value


class UtcDateTime(click.ParamType):  # type: ignore[type-arg]
    """ISO 8601 as the CLI prints it (``2026-11-30T10:00:00Z``), with or without zone; naive is UTC."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return as_utc(value)  # type: ignore[return-value]
        text = str(value).strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date/time; use ISO 8601: 2026-11-30 or 2026-11-30T10:00:00Z", param, ctx)
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


UTC_DATETIME = UtcDateTime()


def print_table(states: list[OrchestrationState]) -> None:
    rows = [
        (s.instance_id, s.name or "", status_name(s), format_time(s.created_time))
        for s in states
    ]
    header = ("INSTANCE ID", "NAME", "STATUS", "CREATED")
    widths = [max(len(str(r[i] or "")) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(str(c or "").ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def parse_statuses(text: str | None) -> list[OrchestrationStatus] | None:
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


def status_name(state: OrchestrationState | None) -> str:
    if state is None:
        return "not found"
    return "Unknown" if state.runtime_status is None else state.runtime_status.name


def as_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class CliError(click.ClickException):
    """A one-line failure that is not a usage error (e.g. a ``wait`` that timed out): exit 2."""

    exit_code = 2


class Verbs:
    """The commands of one verb family; :mod:`durable_azstorage.cli` adds them to the root group."""

    def __init__(self) -> None:
        self.commands: list[click.Command] = []

    def command(self, name: str, help: str | None = None) -> Callable[[F], F]:
        """A verb with the common options (connection, task hub, ``--json``, ``--app-dir``)."""

        def deco(fn: F) -> F:
            self.commands.append(click.command(name, help=help)(common_options(fn)))
            return fn

        return deco

    def register(self, group: click.Group) -> None:
        for command in self.commands:
            group.add_command(command)


def load_register_function(spec: str) -> Callable[[Any], None]:
    """``module:function``: the function receives the :class:`Worker` and registers functions."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter("expected MODULE:FUNCTION, e.g. myapp.workflows:register", param_hint="--app")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="--app") from exc
    register = getattr(module, attr, None)
    if not callable(register):
        raise click.BadParameter(f"{module_name!r} has no callable {attr!r}", param_hint="--app")
    return register  # type: ignore[no-any-return]


def host_settings(
    account: StorageAccount,
    *,
    task_hub_name: str,
    partition_count: int,
    visibility_timeout: float,
    lease_interval: float,
    max_polling_interval: float | None,
    worker_id: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """The WorkerSettings fields every hosting verb (worker, sidecar) takes from its options."""
    from datetime import timedelta

    from ..settings import LOCAL_MAX_QUEUE_POLLING_INTERVAL

    overrides: dict[str, Any] = {
        "task_hub_name": task_hub_name,
        "partition_count": partition_count,
        "control_queue_visibility_timeout": timedelta(seconds=visibility_timeout),
        "work_item_queue_visibility_timeout": timedelta(seconds=visibility_timeout),
        "lease_interval": timedelta(seconds=lease_interval),
        # DTAS claims for a fixed minute; shorter test leases shorten the claim too.
        "lease_claim_duration": timedelta(seconds=60.0 if lease_interval >= 30 else lease_interval),
        "lease_acquire_interval": timedelta(seconds=min(10.0, lease_interval / 3)),
        **extra,
    }
    if worker_id:
        overrides["worker_id"] = worker_id
    if max_polling_interval is not None:
        overrides["max_queue_polling_interval"] = timedelta(seconds=max_polling_interval)
    elif account.is_local:  # docs/performance.md, "Idle cost vs start latency"
        overrides["max_queue_polling_interval"] = LOCAL_MAX_QUEUE_POLLING_INTERVAL
    return overrides
