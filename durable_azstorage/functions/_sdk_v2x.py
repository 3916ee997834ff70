"""azure-functions-durable 2.x apps: which SDK an app imports, and what hosting one takes.

Both SDK majors declare functions with the same ``DFApp`` decorators, so the app folder looks
the same; what differs is the contract of the registered functions. 1.x orchestrators take the
extension's context JSON and return an action list; 2.x orchestrator and entity triggers take
base64 protobuf (:mod:`._runtime_v2x`), and the 2.x client is a gRPC
client of the ``TaskHubSidecarService`` client half at the binding's ``rpcBaseUrl``, which the
host serves in-process on loopback (:class:`~durable_azstorage.sidecar.ClientEndpoint`).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtimes.entities import EntityRuntime, EntityRuntimeByName
from ..runtimes.functions import FunctionsActivityRuntime, FunctionsOrchestrationRuntime
from ..runtimes.functions_entities import FunctionsEntityRuntime
from ._runtime_v2x import FunctionsV2EntityRuntime, FunctionsV2OrchestrationRuntime, TriggerHandle

if TYPE_CHECKING:
    from ..aio import TaskHubClient
    from ..connection import StorageAccount
    from ..runtimes.base import ActivityRuntime, OrchestrationRuntime
    from ..sidecar import ClientEndpoint
    from ._index import AppIndex

__all__ = [
    "Runtimes", "binding_overrides", "durable_sdk_major", "installed_sdk_version", "runtimes_for",
    "sdk_mismatch_hint", "start_client_endpoint", "trigger_handle",
]

_DIST = "azure-functions-durable"

Runtimes = tuple["OrchestrationRuntime", "ActivityRuntime", "EntityRuntime | None"]


def durable_sdk_major() -> int:
    """1 or 2: the major version of the ``azure.durable_functions`` the loaded app imported.

    An app that does not import the SDK at all counts as 1 (nothing durable to host).
    """
    module = sys.modules.get("azure.durable_functions")
    if module is None:
        return 1
    version = installed_sdk_version()
    if version is None:  # a source checkout on sys.path
        return 2 if hasattr(module, "DurableFunctionsClient") else 1
    major = version.split(".", 1)[0]
    return 2 if major.isdigit() and int(major) >= 2 else 1


_V2_ONLY_NAMES = ("DurableFunctionsClient", "SyncDurableFunctionsClient", "durabletask")
_V2_REQUIREMENT = re.compile(r"^\s*azure-functions-durable\s*(?:==|>=|~=|===)\s*2", re.I | re.M)


def installed_sdk_version() -> str | None:
    try:
        return importlib.metadata.version(_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None


def sdk_mismatch_hint(folder: Path, exc: BaseException) -> str:
    """A sentence to add when a 2.x app failed to import next to a 1.x SDK (or an older Python)."""
    installed = installed_sdk_version()
    if installed is not None and not installed.startswith("1."):
        return ""
    requirements = folder / "requirements.txt"
    wants_v2 = requirements.is_file() and bool(_V2_REQUIREMENT.search(requirements.read_text(errors="replace")))
    if not wants_v2 and not any(name in str(exc) for name in _V2_ONLY_NAMES):
        return ""
    here = f"azure-functions-durable {installed} on Python {sys.version.split()[0]}" if installed else (
        f"no azure-functions-durable on Python {sys.version.split()[0]}"
    )
    return (f" (this looks like an azure-functions-durable 2.x app, and this is {here}: 2.x needs Python >= 3.13 — "
            "run durable-azstorage from a Python 3.13 environment with the app's requirements.txt installed)")


def trigger_handle(function: Any, binding_name: str) -> TriggerHandle:
    return TriggerHandle(function, binding_name)


def runtimes_for(index: AppIndex, *, orchestrator_cache_size: int = 1000) -> Runtimes:
    """The worker's runtimes for the app's SDK major version (the cache size: 1.x orchestrators kept)."""
    if index.sdk_major >= 2:
        orchestrators = _handles(index.orchestrators)
        entities = _handles(index.entities)
        return (
            FunctionsV2OrchestrationRuntime(orchestrators),
            FunctionsActivityRuntime(index.activities, legacy_input=False),
            FunctionsV2EntityRuntime(entities) if entities else None,
        )
    entity_runtime: EntityRuntime | None = None
    if index.entities:
        functions = FunctionsEntityRuntime(index.entities)
        entity_runtime = EntityRuntimeByName({name: functions for name in index.entities}, functions)
    legacy = FunctionsOrchestrationRuntime(index.orchestrators, session_capacity=orchestrator_cache_size)
    return legacy, FunctionsActivityRuntime(index.activities), entity_runtime


def _handles(functions: dict[str, Any]) -> dict[str, TriggerHandle]:
    return {name: handle for name, handle in functions.items() if isinstance(handle, TriggerHandle)}


async def start_client_endpoint(
    index: AppIndex, account: StorageAccount, task_hub: str, client: TaskHubClient
) -> ClientEndpoint | None:
    """For 2.x apps: the gRPC client service on a free loopback port, over the host's own client."""
    if index.sdk_major < 2:
        return None
    from ..sidecar import ClientEndpoint

    endpoint = ClientEndpoint(account, task_hub, client=client)
    await endpoint.start()
    return endpoint


def binding_overrides(endpoint: ClientEndpoint | None, management_base: str) -> dict[str, Any]:
    """What a 2.x ``durableClient`` binding carries beyond the 1.x fields.

    ``rpcBaseUrl`` must be ``http://127.0.0.1:PORT`` exactly (no path, no trailing slash): the
    SDK hands it to ``grpc.aio`` as the target. ``httpBaseUrl`` is the management API's base,
    which the 2.x client uses when a template is missing.
    """
    if endpoint is None:
        return {}
    return {"rpcBaseUrl": endpoint.url, "httpBaseUrl": management_base}
