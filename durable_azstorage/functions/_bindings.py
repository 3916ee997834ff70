"""Storage input and output bindings (``blob`` in/out, ``queue`` out) around one function call.

Both programming models describe bindings as function.json entries (v2 through
``get_raw_bindings()``), so one :class:`Binding` reads both. Per invocation, as the host does:
binding expressions in ``path``/``queueName`` are resolved first (``{name}`` from the trigger's
binding data, ``{rand-guid}`` once per binding, ``%Setting%`` from app settings); blob inputs are
read (a missing blob is ``None``); outputs are ``func.Out`` objects; after the function returns,
whatever was ``set`` (or returned, for ``$return``) is written — so a failing function writes
nothing. Values follow the Python worker's converters: blob inputs are ``func.InputStream``
unless the parameter is annotated ``str``/``bytes`` (or ``dataType`` says so); queue outputs take
``str``, ``bytes``, ``func.QueueMessage``, JSON-able values or a list of them.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream

from ..app_files import ci_value
from ..errors import ConfigurationError
from ._connections import Connections

__all__ = [
    "Binding",
    "BindingRuntime",
    "Out",
    "QueueEncoding",
    "binding_data_from_json",
    "parameter_kind",
    "parse_bindings",
    "resolve_expression",
]

log = logging.getLogger(__name__)

STORAGE_BINDINGS = frozenset({"blob", "queue"})
_EXPRESSION = re.compile(r"\{([^{}]+)\}")
_SETTING = re.compile(r"%([^%]+)%")


@dataclass(frozen=True)
class Binding:
    """One function.json binding, keys compared case-insensitively as the host does."""

    type: str
    name: str
    direction: str
    raw: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        value = ci_value(self.raw, key)
        return default if value is None else value

    @property
    def connection(self) -> str | None:
        value = self.get("connection")
        return str(value) if value else None

    @property
    def data_type(self) -> str:
        return str(self.get("dataType", "")).lower()


def parse_bindings(raw: Sequence[Mapping[str, Any]]) -> list[Binding]:
    """function.json ``bindings`` (or v2 raw bindings) as :class:`Binding` objects."""
    bindings = []
    for entry in raw:
        direction = str(ci_value(entry, "direction") or "in").lower()
        bindings.append(Binding(str(ci_value(entry, "type")).lower(), str(ci_value(entry, "name")), direction,
                                dict(entry)))
    return bindings


# ---------------------------------------------------------------------------- expressions
def resolve_expression(template: str, data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """``%Setting%`` and ``{expression}`` in ``template``, as the host's binding expressions."""
    with_settings = resolve_settings(template, environ)
    return _EXPRESSION.sub(lambda match: _expression_value(match.group(1).strip(), data), with_settings)


def resolve_settings(template: str, environ: Mapping[str, str] | None = None) -> str:
    """Only the ``%Setting%`` references (trigger paths keep their ``{name}`` patterns)."""
    env = os.environ if environ is None else environ

    def setting(match: re.Match[str]) -> str:
        if match.group(1) not in env:
            raise ConfigurationError(f"binding expression %{match.group(1)}% refers to an app setting that is not set")
        return env[match.group(1)]

    return _SETTING.sub(setting, template)


def _expression_value(expression: str, data: Mapping[str, Any]) -> str:
    lowered = expression.lower()
    if lowered in ("rand-guid", "sys.randguid"):
        return str(uuid.uuid4())
    if lowered in ("datetime", "sys.utcnow"):
        return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    value: Any = data
    for part in expression.split("."):
        value = ci_value(value, part) if isinstance(value, Mapping) else None
        if value is None:
            raise LookupError(f"No value for named parameter '{expression}'")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def binding_data_from_json(text: str | bytes | None) -> dict[str, Any]:
    """A JSON object payload's top-level properties become binding data (``{orderId}``)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return dict(value) if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------- values
def parameter_kind(function: Callable[..., Any], name: str, data_type: str = "") -> str:
    """``str``, ``bytes`` or ``object`` (the binding's rich type), from annotation or dataType."""
    try:
        annotation = inspect.signature(function).parameters[name].annotation
    except (KeyError, TypeError, ValueError):
        annotation = inspect.Parameter.empty
    if isinstance(annotation, str):  # from __future__ import annotations
        annotation = {"str": str, "bytes": bytes}.get(annotation.split(".")[-1], annotation)
    if annotation is str or data_type == "string":
        return "str"
    if annotation is bytes or data_type == "binary":
        return "bytes"
    return "object"


class Out(func.Out[Any]):
    """``func.Out`` for an output binding: the worker's ``set``/``get``."""

    def __init__(self) -> None:
        self._value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self._value, self.was_set = val, True

    def get(self) -> Any:
        return self._value


@dataclass(frozen=True)
class QueueEncoding:
    """host.json ``extensions.queues.messageEncoding``: ``base64`` (the default) or ``none``."""

    base64: bool = True

    def encode(self, text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii") if self.base64 else text

    def decode(self, content: str) -> str:
        """Raises ``ValueError`` for content that is not base64 of UTF-8 when base64 is on."""
        if not self.base64:
            return content
        return base64.b64decode(content.encode("ascii"), validate=True).decode("utf-8")


def queue_texts(value: Any) -> list[str]:
    """What a queue output receives, as message texts (a list sends several messages)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in queue_texts(item)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value).decode("utf-8")]
    if isinstance(value, func.QueueMessage):
        return [value.get_body().decode("utf-8")]
    return [json.dumps(value)]


def blob_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    reader = getattr(value, "read", None)
    if callable(reader):
        data = reader()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    raise TypeError(f"a blob output takes str, bytes or a file-like object, not {type(value).__name__}")


def split_blob_path(path: str) -> tuple[str, str]:
    container, _, blob = path.strip("/").partition("/")
    if not container or not blob:
        raise ConfigurationError(f"blob path {path!r} must be 'container/blob'")
    return container, blob


# ---------------------------------------------------------------------------- I/O
@dataclass
class BindingRuntime:
    """Reads and writes the storage bindings of invocations."""

    connections: Connections
    encoding: QueueEncoding = field(default_factory=QueueEncoding)

    async def read_blob(self, connection: str | None, path: str) -> tuple[bytes, dict[str, Any]] | None:
        container, blob = split_blob_path(path)
        async with self.connections.account(connection).blob_service() as service:
            client = service.get_blob_client(container, blob)
            try:
                downloader = await client.download_blob()
                data = await downloader.readall()
            except ResourceNotFoundError:
                return None
            props = downloader.properties
            return data, {"name": f"{container}/{blob}", "uri": client.url, "length": len(data),
                          "metadata": dict(props.metadata or {}),
                          "properties": {"ETag": props.etag, "ContentType": props.content_settings.content_type}}

    async def write_blob(self, connection: str | None, path: str, data: bytes) -> None:
        container, blob = split_blob_path(path)
        async with self.connections.account(connection).blob_service() as service:
            client = service.get_blob_client(container, blob)
            try:
                await client.upload_blob(data, overwrite=True)
            except ResourceNotFoundError:
                try:
                    await service.create_container(container)
                except ResourceExistsError:
                    pass
                await client.upload_blob(data, overwrite=True)

    async def send_messages(self, connection: str | None, queue: str, texts: Sequence[str]) -> None:
        if not texts:
            return
        async with self.connections.account(connection).queue_service() as service:
            client = service.get_queue_client(queue)
            for n, text in enumerate(texts):
                try:
                    await client.send_message(self.encoding.encode(text))
                except ResourceNotFoundError:
                    if n:
                        raise
                    try:
                        await client.create_queue()
                    except ResourceExistsError:
                        pass
                    await client.send_message(self.encoding.encode(text))

    # ------------------------------------------------------------------ one invocation
    async def invoke(
        self,
        function: Callable[..., Any],
        kwargs: dict[str, Any],
        bindings: Sequence[Binding],
        data: Mapping[str, Any],
    ) -> Any:
        """Call ``function`` with ``kwargs`` plus its storage bindings; write outputs on success."""
        outputs: list[tuple[Binding, str, Out]] = []
        for binding in bindings:
            if binding.type not in STORAGE_BINDINGS:
                continue
            target = _target(binding, data)
            if binding.direction == "in" and binding.type == "blob":
                kwargs[binding.name] = await self._blob_argument(function, binding, target)
            elif binding.direction in ("out", "inout"):
                out = Out()
                outputs.append((binding, target, out))
                if binding.name != "$return":
                    kwargs[binding.name] = out
        result = await call_user_function(function, kwargs)
        for binding, target, out in outputs:
            value = result if binding.name == "$return" else out.get()
            if binding.name == "$return" or out.was_set:
                await self._write(binding, target, value)
        return result

    async def _blob_argument(self, function: Callable[..., Any], binding: Binding, path: str) -> Any:
        found = await self.read_blob(binding.connection, path)
        if found is None:
            return None
        data, info = found
        kind = parameter_kind(function, binding.name, binding.data_type)
        if kind == "str":
            return data.decode("utf-8")
        if kind == "bytes":
            return data
        return InputStream(data=data, name=info["name"], uri=info["uri"], length=info["length"],
                                blob_properties=info["properties"], metadata=info["metadata"])

    async def _write(self, binding: Binding, target: str, value: Any) -> None:
        if binding.type == "queue":
            await self.send_messages(binding.connection, target, queue_texts(value))
        elif binding.type == "blob":
            data = blob_bytes(value)
            if data is not None:
                await self.write_blob(binding.connection, target, data)


def _target(binding: Binding, data: Mapping[str, Any]) -> str:
    key = "queueName" if binding.type == "queue" else "path"
    template = binding.get(key) or (binding.get("queue") if binding.type == "queue" else None)
    if not template:
        raise ConfigurationError(f"binding {binding.name!r} ({binding.type}) has no {key!r}")
    resolved = resolve_expression(str(template), data)
    return resolved.lower() if binding.type == "queue" else resolved


async def call_user_function(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """``async def`` on the loop, plain functions in the default thread pool (as the worker)."""
    if inspect.iscoroutinefunction(function):
        return await function(**kwargs)
    result = await asyncio.to_thread(function, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def with_bindings(
    runtime_of: Callable[[], BindingRuntime | None],
    function: Callable[..., Any],
    trigger_name: str,
    bindings: Sequence[Binding],
) -> Callable[..., Awaitable[Any]]:
    """An activity (or other function) whose storage bindings are filled around each call.

    ``runtime_of`` is read at call time: the host creates the runtime when it starts.
    """

    async def call(**kwargs: Any) -> Any:
        runtime = runtime_of()
        if runtime is None:
            raise RuntimeError("storage bindings are available only while the Functions host runs")
        value = kwargs.get(trigger_name)
        data = dict(value) if isinstance(value, dict) else _http_binding_data(value)
        return await runtime.invoke(function, dict(kwargs), bindings, data)

    call.__wrapped__ = function  # type: ignore[attr-defined]
    return call


def _http_binding_data(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for attribute in ("params", "route_params"):
        data.update(dict(getattr(value, attribute, None) or {}))
    get_body = getattr(value, "get_body", None)
    if callable(get_body):
        data.update(binding_data_from_json(get_body() or None))
    return data
