"""Counting storage transactions: every HTTP request the Azure SDK clients send, classified.

Storage is billed per transaction, and the data-flow of an orchestration step is judged by
how many it costs; this request hook makes that number observable in tests, benchmarks and
production: ``account.with_client_kwargs(**counter.client_kwargs())``. (The storage SDKs build
their own pipelines and ignore ``per_call_policies``; every one of them honours
``raw_request_hook``.)
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

__all__ = ["TransactionCounter", "classify_request"]


def _service(host: str, port: int | None, path: str, ports: dict[int, str]) -> str:
    if port is not None and port in ports:
        return ports[port]
    for service in ("queue", "table", "blob"):
        if f".{service}." in host:
            return service
    return "unknown"


def _queue_operation(method: str, parts: list[str], query: dict[str, list[str]]) -> str:
    if len(parts) >= 2 and parts[1] == "messages":
        if method == "GET":
            return "PeekMessages" if "peekonly" in query else "ReceiveMessages"
        if method == "POST":
            return "PutMessage"
        if method == "PUT":
            return "UpdateMessage"
        if method == "DELETE":
            return "DeleteMessage" if len(parts) >= 3 else "ClearMessages"
    if method == "GET" and "metadata" in query.get("comp", []):
        return "GetQueueMetadata"
    return {"PUT": "CreateQueue", "DELETE": "DeleteQueue", "GET": "ListQueues"}.get(method, method)


def _table_operation(method: str, parts: list[str]) -> str:
    head = parts[0] if parts else ""
    if head == "$batch":
        return "EntityGroupTransaction"
    if head.startswith("Tables"):
        return {"POST": "CreateTable", "DELETE": "DeleteTable", "GET": "QueryTables"}.get(method, method)
    keyed = "(" in head and not head.endswith("()")
    if method == "GET":
        return "GetEntity" if keyed else "QueryEntities"
    if method == "POST":
        return "InsertEntity"
    if method == "PUT":
        return "UpsertReplace"
    if method in ("MERGE", "PATCH"):
        return "UpsertMerge"
    if method == "DELETE":
        return "DeleteEntity"
    return method


def _blob_operation(method: str, parts: list[str], query: dict[str, list[str]]) -> str:
    comp = query.get("comp", [""])[0]
    if len(parts) <= 1:
        if comp == "list":
            return "ListBlobs"
        if comp == "lease":
            return "LeaseContainer"
        return {"PUT": "CreateContainer", "DELETE": "DeleteContainer"}.get(method, "GetContainer")
    if comp == "lease":
        return "LeaseBlob"
    return {"PUT": "PutBlob", "GET": "GetBlob", "DELETE": "DeleteBlob", "HEAD": "GetBlobProperties"}.get(
        method, method
    )


def classify_request(method: str, url: str, ports: dict[int, str] | None = None) -> tuple[str, str]:
    """``(service, operation)`` of one storage request, e.g. ``("queue", "PutMessage")``.

    Azurite serves the three services on different ports of one host, so ``ports`` maps
    them; real accounts are told apart by host name.
    """
    split = urlsplit(url)
    parts = [p for p in split.path.split("/") if p]
    service = _service(split.hostname or "", split.port, split.path, ports or {})
    if parts and parts[0].startswith("devstoreaccount"):
        parts = parts[1:]
    query = parse_qs(split.query)
    if service == "queue":
        return service, _queue_operation(method, parts, query)
    if service == "table":
        return service, _table_operation(method, parts)
    if service == "blob":
        return service, _blob_operation(method, parts, query)
    return service, method


_SHAPE_LIMIT = 4096


def _url_shape(url: str) -> str:
    """The URL with what never changes its operation blanked: a message id, entity keys, query values.

    Requests of one shape classify alike, so :class:`TransactionCounter` parses each shape once
    (the counter runs on every request of an engine under measurement).
    """
    base, _, query = url.partition("?")
    paren = base.find("(")
    if paren >= 0:
        base = base[:paren] + ("()" if base.endswith("()") else "(k)")
    messages = base.find("/messages/")
    if messages >= 0:
        base = base[: messages + 10] + "m"
    if not query:
        return base
    names = sorted(p if p.startswith("comp=") else p.partition("=")[0] for p in query.split("&"))
    return base + "?" + "&".join(names)


class TransactionCounter(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """A per-call pipeline policy that counts requests by ``(service, operation)``.

    Retries are separate transactions on the bill, and a per-call policy sees each logical
    call once, so counts here are a lower bound that matches DTAS's own accounting.
    """

    def __init__(self, ports: dict[int, str] | None = None) -> None:
        super().__init__()
        self._ports = dict(ports or {})
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self._known: dict[tuple[str, str], tuple[str, str]] = {}

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        method, url = http.method, http.url
        shape = (method, _url_shape(url))
        key = self._known.get(shape)
        if key is None:
            key = classify_request(method, url, self._ports)
            if len(self._known) >= _SHAPE_LIMIT:
                self._known.clear()
            self._known[shape] = key
        with self._lock:
            self.counts[key] += 1

    def __call__(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        self.on_request(request)

    def client_kwargs(self) -> dict[str, object]:
        """Keyword arguments that make every Azure Storage client report to this counter."""
        return {"raw_request_hook": self}

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def by_service(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (service, _), count in self.snapshot().items():
            totals[service] += count
        return dict(totals)
