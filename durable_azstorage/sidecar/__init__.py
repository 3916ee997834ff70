"""The Durable Task gRPC protocol (``TaskHubSidecarService``) served over this engine.

``durable-azstorage sidecar --port 4001`` lets the durabletask SDKs of any language (Python,
JavaScript, .NET, Java, Go) and azure-functions-durable 2.x keep their state in Azure Storage in
the DTAS layout. See docs/sidecar.md.
"""

from .server import DEFAULT_PORT, ClientEndpoint, Sidecar, TlsFiles, client_servicer
from .service import SidecarServicer

__all__ = ["DEFAULT_PORT", "ClientEndpoint", "Sidecar", "SidecarServicer", "TlsFiles", "client_servicer"]
