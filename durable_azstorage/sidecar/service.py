"""``TaskHubSidecarService`` put together from its halves; every other RPC is ``UNIMPLEMENTED``.

The client half (:class:`.ClientService`) can be served alone — the Functions host does that
for azure-functions-durable 2.x clients; the worker half (:class:`.WorkerService`) needs the
sidecar's embedded worker host. An RPC neither half serves answers ``UNIMPLEMENTED`` with a
message naming it, instead of grpcio's bare "Method not implemented!".
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from ._proto import empty_pb2, pb, pb_grpc
from .client_service import ClientService

__all__ = ["KeyInterceptor", "RPC_NAMES", "SidecarServicer", "add_to_server"]

log = logging.getLogger(__name__)

RPC_NAMES: tuple[str, ...] = tuple(m.name for m in pb.DESCRIPTOR.services_by_name["TaskHubSidecarService"].methods)

_WHY_NOT = {
    "SkipGracefulOrchestrationTerminations": "graceful-termination skipping is a Durable Task Scheduler feature",
}


def _unimplemented(name: str, why: str) -> Callable[[Any, Any], Awaitable[Any]]:
    async def handler(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not supported by durable-azstorage: {why}")

    handler.__name__ = name
    return handler


class SidecarServicer(pb_grpc.TaskHubSidecarServiceServicer):  # type: ignore[misc]
    """One servicer object whose RPC attributes come from the halves given."""

    def __init__(self, client: ClientService | None, worker: Any | None = None) -> None:
        served: list[str] = []
        for name in RPC_NAMES:
            impl = None
            for half in (client, worker):
                if half is not None and callable(getattr(half, name, None)):
                    impl = getattr(half, name)
                    break
            if impl is None:
                if name == "Hello" and client is not None:
                    impl = self._hello
                else:
                    why = _WHY_NOT.get(name) or (
                        "this endpoint serves the client half only (run `durable-azstorage sidecar` for workers)"
                        if worker is None
                        else "not implemented"
                    )
                    impl = _unimplemented(name, why)
            else:
                served.append(name)
            setattr(self, name, impl)
        self.served = tuple(served)

    @staticmethod
    async def _hello(request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


class KeyInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Requires ``authorization: Bearer <key>`` on every call (the header the SDKs' credentials use)."""

    def __init__(self, key: str) -> None:
        self._expected = f"bearer {key}".encode()

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        for name, value in handler_call_details.invocation_metadata or ():
            if name.lower() == "authorization":
                given = (value if isinstance(value, str) else value.decode()).strip()
                scheme, _, token = given.partition(" ")
                if hmac.compare_digest(f"{scheme.lower()} {token.strip()}".encode(), self._expected):
                    return await continuation(handler_call_details)
        return _DENIED


async def _deny(request: Any, context: Any) -> Any:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED, "missing or wrong key: send the metadata 'authorization: Bearer <key>'"
    )


_DENIED = grpc.unary_unary_rpc_method_handler(_deny)


def add_to_server(servicer: SidecarServicer, server: Any) -> None:
    pb_grpc.add_TaskHubSidecarServiceServicer_to_server(servicer, server)
