"""A Functions app directory's ``host.json`` and ``local.settings.json``, read as Core Tools do.

``func durable`` and ``func start`` take the task hub, the connection setting name and the
partition count from ``host.json`` and fill the environment from ``local.settings.json``;
reading both here lets ``durable-azstorage`` be pointed at an existing app folder and see the
same hub. Broken files are reported with the file name and the parser's message, never a
traceback, because they are user input.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = ["AppFiles", "ci_value", "load_app_files", "resolve_setting_reference"]

log = logging.getLogger(__name__)

HOST_JSON = "host.json"
LOCAL_SETTINGS_JSON = "local.settings.json"
_UNSUPPORTED_PROVIDERS = {"netherite", "mssql", "microsoftsql"}
_REFERENCE = re.compile(r"^%([^%]+)%$")


@dataclass(frozen=True)
class AppFiles:
    """What the two files of one app directory say; both are optional."""

    directory: Path
    host_json: Mapping[str, Any] = field(default_factory=dict)
    local_values: Mapping[str, str] = field(default_factory=dict)

    @property
    def durable_task(self) -> Mapping[str, Any]:
        """``extensions.durableTask`` (host.json 2.0) or the root ``durableTask`` (1.x)."""
        if str(ci_value(self.host_json, "version") or "").startswith("2"):
            return _section(_section(self.host_json, "extensions"), "durableTask")
        return _section(self.host_json, "durableTask")

    def task_hub_name(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``hubName``, with a ``%Setting%`` reference resolved as the Functions host does."""
        raw = ci_value(self.durable_task, "hubName")
        if raw is None:
            return None
        return resolve_setting_reference(str(raw), self._environ(environ))

    def route_prefix(self) -> str:
        """``extensions.http.routePrefix`` (default ``api``; an empty string serves at the root)."""
        prefix = ci_value(_section(_section(self.host_json, "extensions"), "http"), "routePrefix")
        return "api" if prefix is None else str(prefix).strip("/")

    def connection_setting(self) -> str | None:
        """The setting that names the storage connection (``storageProvider.connectionName``)."""
        storage = _section(self.durable_task, "storageProvider")
        for key in ("connectionName", "connectionStringName"):
            value = ci_value(storage, key)
            if value:
                return str(value)
        legacy = ci_value(self.durable_task, "AzureStorageConnectionStringName")
        return str(legacy) if legacy else None

    def partition_count(self) -> int | None:
        raw = ci_value(_section(self.durable_task, "storageProvider"), "partitionCount")
        if raw is None:
            return None
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{self._host_path()}: storageProvider.partitionCount must be a number") from exc

    def check_provider(self) -> None:
        """Refuse a hub that lives in another backend, as ``func durable`` does."""
        kind = ci_value(_section(self.durable_task, "storageProvider"), "type")
        if kind is not None and str(kind).lower() in _UNSUPPORTED_PROVIDERS:
            raise ConfigurationError(
                f"{self._host_path()}: storageProvider.type is {kind!r}; durable-azstorage serves the "
                "Azure Storage provider only"
            )

    def apply_local_values(self, environ: MutableMapping[str, str] | None = None) -> list[str]:
        """Copy ``Values`` into the environment without overriding what is already set.

        Returns the names that were set, so callers can log them (values may be secrets).
        """
        target = os.environ if environ is None else environ
        applied = [name for name in self.local_values if name not in target]
        for name in applied:
            target[name] = self.local_values[name]
        if applied:
            log.debug("app_files.local_settings_applied", extra={"names": applied})
        return applied

    def _environ(self, environ: Mapping[str, str] | None) -> Mapping[str, str]:
        if environ is not None:
            return environ
        merged = dict(self.local_values)
        merged.update(os.environ)
        return merged

    def _host_path(self) -> Path:
        return self.directory / HOST_JSON


def resolve_setting_reference(value: str, environ: Mapping[str, str]) -> str:
    """``%Name%`` → the value of setting ``Name``; anything else unchanged."""
    match = _REFERENCE.match(value)
    if match is None:
        return value
    name = match.group(1)
    if name not in environ:
        raise ConfigurationError(f"host.json refers to app setting %{name}%, which is not set")
    return environ[name]


def load_app_files(directory: str | os.PathLike[str]) -> AppFiles:
    """Read ``host.json`` and ``local.settings.json`` of ``directory``; missing files are empty."""
    root = Path(directory)
    host = _read_json(root / HOST_JSON)
    local = _read_json(root / LOCAL_SETTINGS_JSON)
    values = _section(local, "Values", file=root / LOCAL_SETTINGS_JSON)
    bad = [k for k, v in values.items() if not isinstance(v, (str, int, float, bool))]
    if bad:
        raise ConfigurationError(f"{root / LOCAL_SETTINGS_JSON}: Values.{bad[0]} must be a string")
    text_values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    files = AppFiles(root, host, text_values)
    files.check_provider()
    return files


def _read_json(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: the top level must be a JSON object")
    return data


def _section(mapping: Mapping[str, Any], key: str, *, file: Path | None = None) -> Mapping[str, Any]:
    value = ci_value(mapping, key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        where = f"{file}: " if file is not None else ""
        raise ConfigurationError(f"{where}{key} must be a JSON object")
    return value


def ci_value(mapping: Mapping[str, Any], key: str) -> Any:
    """``mapping[key]`` compared case-insensitively, as the Functions host reads its JSON files."""
    lowered = key.lower()
    for name, value in mapping.items():
        if name.lower() == lowered:
            return value
    return None
