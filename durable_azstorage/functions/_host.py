"""A local host for Functions apps: worker + HTTP triggers + management API + client-binding RPC.

What ``func start`` gives a Durable Functions app, without the .NET host: the app's HTTP
functions at ``/{routePrefix}/{route}`` (``func.HttpRequest`` in, ``func.HttpResponse`` out), the
Durable Functions management API at ``/runtime/webhooks/durabletask``, and the routes the 1.x
``DurableOrchestrationClient`` calls at its ``rpcBaseUrl`` — served from the same process as the
worker that runs the orchestrators, activities and entities.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ..aio import TaskHubClient
from ..app_files import AppFiles, load_app_files
from ..client import BASE_PATH
from ..connection import StorageAccount
from ..errors import ConfigurationError
from ..http import RPC_BASE_PATH, create_app, is_loopback
from ..settings import DEFAULT_TASK_HUB_NAME, WorkerSettings
from ..sidecar import ClientEndpoint
from ..telemetry.propagation import incoming_trace_context
from ..worker import Worker
from ._bindings import BindingRuntime, call_user_function
from ._connections import Connections
from ._index import AppIndex, HttpFunction
from ._loader import load_app
from ._queue_trigger import QueueOptions
from ._sdk_session import adopt_running_loop
from ._sdk_v2x import binding_overrides, runtimes_for, start_client_endpoint
from ._triggers import TriggerHost, TriggerOptions

__all__ = ["FunctionsHost"]

log = logging.getLogger(__name__)

_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class FunctionsHost:
    """Runs one Functions app until stopped; ``async with`` or :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        index: AppIndex,
        account: StorageAccount,
        *,
        app_files: AppFiles | None = None,
        task_hub_name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 7071,
        key: str | None = None,
        connection_name: str = "Storage",
        trigger_options: TriggerOptions | None = None,
        sock: socket.socket | None = None,
        **setting_overrides: Any,
    ) -> None:
        if not is_loopback(host) and not key:
            raise ConfigurationError(
                f"refusing to serve on {host!r} without a key: pass one (clients send ?code= or x-functions-key)"
            )
        from ..dashboard import counted_account  # counts the worker's storage requests for the dashboard

        account, self.transactions = counted_account(account)
        self.index = index
        self.account = account
        self._files = app_files or AppFiles(index.root)
        self._host, self._port, self._key = host, port, key
        self._sock = sock  # already listening (bound before the worker starts), or None
        self._connection_name = connection_name
        overrides = dict(setting_overrides)
        if task_hub_name:
            overrides["task_hub_name"] = task_hub_name
        elif "task_hub_name" not in overrides:
            overrides["task_hub_name"] = self._files.task_hub_name() or DEFAULT_TASK_HUB_NAME
        local = account.is_local
        self.settings = WorkerSettings.from_host_json(self._files.host_json, local_account=local, **overrides)
        self.route_prefix = self._files.route_prefix()
        orchestrations, activities, entities = runtimes_for(  # 1.x or 2.x SDK contracts
            index, orchestrator_cache_size=self.settings.orchestrator_cache_size
        )
        self.orchestration_runtime = orchestrations  # its ``sessions`` counters (1.x) are what a benchmark reads
        self.worker = Worker(
            account,
            self.settings,
            orchestration_runtime=orchestrations,
            activity_runtime=activities,
            entity_runtime=entities,
        )
        self._rpc: ClientEndpoint | None = None  # 2.x apps: the gRPC client service at rpcBaseUrl
        self._client: TaskHubClient | None = None
        self._runner: web.AppRunner | None = None
        self._trigger_options = trigger_options
        self.triggers: TriggerHost | None = None
        self.base_url = ""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], account: StorageAccount, **options: Any) -> FunctionsHost:
        """Load the app at ``path`` (its folder's local.settings.json fills the environment first)."""
        folder = Path(path)
        files = load_app_files(folder if folder.is_dir() else folder.parent)
        files.apply_local_values()
        return cls(load_app(path), account, app_files=files, **options)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        adopt_running_loop()  # the 1.x client's shared session must live on this loop
        for problem in self.index.problems:
            log.warning("functions.function_skipped", extra={"problem": problem})
        await self.worker.start()
        self._client = await TaskHubClient.open(self.account, self.settings.task_hub_name)
        self._rpc = await start_client_endpoint(self.index, self.account, self.settings.task_hub_name, self._client)
        app = create_app(self._client, key=self._key, connection_name=self._connection_name, rpc=True,
                         orchestrators=frozenset(self.index.orchestrators))
        from ..dashboard import mount_dashboard

        mount_dashboard(app, self._client, key=self._key, counter=self.transactions)
        for function in self.index.http:
            self._add_http_function(app, function)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site: web.BaseSite
        if self._sock is not None:
            site = web.SockSite(self._runner, self._sock)
        else:
            site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = _bound_port(self._runner) if self._sock is not None or not self._port else self._port
        self.base_url = f"http://{_url_host(self._host)}:{port}"
        await self._start_triggers()
        log.info("functions.host_started", extra={"url": self.base_url, "task_hub": self.settings.task_hub_name})

    async def _start_triggers(self) -> None:
        """Storage bindings and the timer/queue/blob listeners (see ``_triggers``)."""
        connections = Connections(self.account)
        runtime = BindingRuntime(connections, QueueOptions.from_host_json(self._files.host_json).encoding)
        self.index.binding_runtime = runtime
        self.triggers = TriggerHost(self.index, connections, runtime, self._files,
                                    lambda: self.client_binding(self._local_origin()), self._trigger_options)
        await self.triggers.start()

    async def stop(self) -> None:
        if self.triggers is not None:
            await self.triggers.stop()
            self.triggers = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._rpc is not None:
            await self._rpc.stop()
            self._rpc = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.worker.stop()

    async def __aenter__(self) -> FunctionsHost:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ HTTP functions
    def _add_http_function(self, app: web.Application, function: HttpFunction) -> None:
        handler = self._handler(function)
        methods = function.methods or _ALL_METHODS
        for path in _aiohttp_paths(self.route_prefix, function.route):
            for method in methods:
                app.router.add_route(method, path, handler)

    def _handler(self, function: HttpFunction) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            if function.auth_level != "anonymous" and self._key is not None and not self._authorised(request):
                return web.json_response({"error": "A valid function key is required"}, status=401)
            return await self._invoke(function, request)

        return handle

    def _authorised(self, request: web.Request) -> bool:
        given = request.query.get("code") or request.headers.get("x-functions-key") or ""
        return self._key is not None and hmac.compare_digest(given.encode(), self._key.encode())

    async def _invoke(self, function: HttpFunction, request: web.Request) -> web.StreamResponse:
        from ._http_bridge import to_aiohttp_response, to_http_request

        kwargs: dict[str, Any] = {function.request_binding: await to_http_request(request)}
        if function.client_binding is not None:
            binding = self.client_binding(str(request.url.origin()))
            kwargs[function.client_binding] = binding
            for extra in function.extra_inputs:
                kwargs[extra] = binding
        outputs: dict[str, Any] = {}
        if function.output_binding != "$return":
            outputs[function.output_binding] = kwargs[function.output_binding] = _Out()
        try:
            # Plain functions in the thread pool, as the Python worker runs them (a 2.x sync client
            # blocks on gRPC calls that this loop answers). The request's trace context is current
            # for it (to_thread copies it); its durable client forwards it to our RPC route.
            with incoming_trace_context(request.headers):
                result = await call_user_function(function.function, kwargs)
        except Exception as exc:
            log.exception("functions.http_function_failed", extra={"function_name": function.name})
            return web.json_response({"error": f"function {function.name!r} failed: {type(exc).__name__}: {exc}"},
                                     status=500)
        if function.output_binding != "$return":
            result = outputs[function.output_binding].value
        return to_aiohttp_response(result)

    def client_binding(self, origin: str) -> str:
        """The ``durableClient`` binding JSON (``OrchestrationClientInputData``) for this host."""
        base = f"{origin}{BASE_PATH}"
        hub = self.settings.task_hub_name
        query = f"taskHub={hub}&connection={self._connection_name}"
        if self._key:
            query += f"&code={self._key}"
        iid = "INSTANCEID"
        binding: dict[str, Any] = {
            "taskHubName": hub,
            "connectionName": self._connection_name,
            "creationUrls": {
                "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]?{query}",
                "createAndWaitOnNewInstancePostUri": (
                    f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                    f"?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{query}"
                ),
            },
            "managementUrls": {
                "id": iid,
                "statusQueryGetUri": f"{base}/instances/{iid}?{query}",
                "sendEventPostUri": f"{base}/instances/{iid}/raiseEvent/{{eventName}}?{query}",
                "terminatePostUri": f"{base}/instances/{iid}/terminate?reason={{text}}&{query}",
                "rewindPostUri": f"{base}/instances/{iid}/rewind?reason={{text}}&{query}",
                "purgeHistoryDeleteUri": f"{base}/instances/{iid}?{query}",
                "restartPostUri": f"{base}/instances/{iid}/restart?{query}",
                "suspendPostUri": f"{base}/instances/{iid}/suspend?reason={{text}}&{query}",
                "resumePostUri": f"{base}/instances/{iid}/resume?reason={{text}}&{query}",
            },
            "baseUrl": base,
            "requiredQueryStringParameters": f"code={self._key}" if self._key else "",
            "rpcBaseUrl": f"{self._local_origin()}{RPC_BASE_PATH}/",
            "httpBaseUrl": f"{origin}/{self.route_prefix}".rstrip("/"),
        }
        return json.dumps(binding | binding_overrides(self._rpc, base))

    def _local_origin(self) -> str:
        # The client calls RPC routes from this process: always over loopback.
        return self.base_url.replace(f"//{_url_host(self._host)}:", "//127.0.0.1:") if self.base_url else ""


class _Out:
    """A ``func.Out`` for a named ``http`` output binding (v1 apps call ``.set(response)``)."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([^}?=]+))?(\?)?(?:=[^}]*)?\}")
_CONSTRAINTS = {"int": r"-?\d+", "long": r"-?\d+", "guid": r"[0-9A-Fa-f-]{36}", "bool": r"(?i:true|false)",
                "alpha": r"[A-Za-z]+", "double": r"-?\d+(?:\.\d+)?", "float": r"-?\d+(?:\.\d+)?"}


def _aiohttp_paths(prefix: str, route: str) -> list[str]:
    """Functions route templates (``{id?}``, ``{id:int}``, ``{*rest}``) as aiohttp paths."""
    template = "/" + "/".join(part for part in (prefix, route.strip("/")) if part)
    optional = [m for m in _PARAM.finditer(template) if m.group(4)]
    paths = [_PARAM.sub(_aiohttp_param, template)]
    if optional:
        shortened = template
        for match in optional:
            shortened = shortened.replace("/" + match.group(0), "").replace(match.group(0), "")
        paths.append(_PARAM.sub(_aiohttp_param, shortened) or "/")
    return list(dict.fromkeys(paths))


def _aiohttp_param(match: re.Match[str]) -> str:
    star, name, constraint = match.group(1), match.group(2), match.group(3)
    if star:
        return f"{{{name}:.*}}"
    pattern = _CONSTRAINTS.get((constraint or "").split("(")[0].lower())
    return f"{{{name}:{pattern}}}" if pattern else f"{{{name}}}"


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the HTTP server did not report its port")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison: wildcard binds are reached via loopback
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def serve_forever(host: FunctionsHost, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM)."""
    async with host:
        await (stop or asyncio.Event()).wait()
