"""The lean data path signs exactly as the Azure SDK's policies do, for every hot operation.

Each operation runs through the real lean client against a recording session; the recorded
request (without its Authorization) is then signed by the SDK's own SharedKey policy and
the canonical strings and signatures are compared. SAS requests must carry the same query
as azure-core's ``AzureSasCredentialPolicy`` produces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.policies import AzureSasCredentialPolicy
from azure.core.rest import HttpRequest
from azure.data.tables import UpdateMode
from azure.data.tables._authentication import SharedKeyCredentialPolicy as TablePolicy
from azure.storage.blob import ContentSettings
from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy as BlobPolicy
from azure.storage.queue._shared.authentication import SharedKeyCredentialPolicy as QueuePolicy
from multidict import CIMultiDict

from durable_azstorage.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from durable_azstorage.connection import StorageAccount
from durable_azstorage.lean_rest import signing

ACCOUNT = "myaccount"
KEY = DEV_ACCOUNT_KEY
ENDPOINTS = {s: f"https://{ACCOUNT}.{s}.core.windows.net" for s in ("blob", "queue", "table")}
ODD = "a b/c'd@é#%+?&=:"

_QUEUE_XML = (
    b"<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>id-1</MessageId>"
    b"<InsertionTime>Mon, 30 Nov 2026 10:21:03 GMT</InsertionTime><ExpirationTime>Fri, 31 Dec 9999 23:59:59 GMT"
    b"</ExpirationTime><PopReceipt>AgAAAA+/=</PopReceipt><TimeNextVisible>Mon, 30 Nov 2026 10:26:03 GMT"
    b"</TimeNextVisible><DequeueCount>2</DequeueCount><MessageText>{&quot;a&quot;:&lt;1&gt;}</MessageText>"
    b"</QueueMessage></QueueMessagesList>"
)
_BATCH = (
    b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    b"--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\nETag: W/\"datetime'1'\"\r\n\r\n\r\n"
    b"--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\nETag: W/\"datetime'2'\"\r\n\r\n\r\n"
    b"--changesetresponse_2--\r\n--batchresponse_1--\r\n"
)


class _Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = "OK"
        self.headers = CIMultiDict(headers)
        self._body = body

    async def read(self) -> bytes:
        return self._body

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class _Session:
    """Records requests and answers each with the canned response for its shape."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def request(self, method: str, url: Any, *, headers: dict[str, str], data: bytes | None) -> _Response:
        self.sent.append((method, str(url), dict(headers), data))
        text = str(url)
        if "/$batch" in text:
            return _Response(202, {}, _BATCH)
        if "/messages" in text and method in ("POST", "GET"):
            return _Response(201 if method == "POST" else 200, {}, _QUEUE_XML)
        if "/messages/" in text and method == "PUT":
            visible = "Mon, 30 Nov 2026 10:26:03 GMT"
            return _Response(204, {"x-ms-popreceipt": "new", "x-ms-time-next-visible": visible}, b"")
        if ".table." in text and method == "GET":
            if "()" in text:
                return _Response(200, {}, b'{"value":[{"PartitionKey":"p","RowKey":"r","odata.etag":"W/1"}]}')
            return _Response(200, {}, b'{"PartitionKey":"p","RowKey":"r","odata.etag":"W/1"}')
        if ".table." in text:
            return _Response(204, {"ETag": 'W/"x"'}, b"")
        return _Response(201 if method == "PUT" else 200, {}, b"\x1f\x8b")

    async def close(self) -> None:
        return None


def _account(credential: Any) -> StorageAccount:
    endpoints = ENDPOINTS["blob"], ENDPOINTS["queue"], ENDPOINTS["table"]
    return StorageAccount(*endpoints, credential, ACCOUNT, data_path="lean")


Operation = Callable[[Any, Any, Any], Awaitable[Any]]

_ENTITY = {"PartitionKey": ODD, "RowKey": "0000000000000001", "S": "x", "N": 5}
_OPERATIONS: dict[str, tuple[str, Operation]] = {
    "queue put": ("queue", lambda q, t, c: q.send_message("<m>&", visibility_timeout=5, time_to_live=-1)),
    "queue receive": ("queue", lambda q, t, c: _drain(q.receive_messages(max_messages=32, visibility_timeout=300))),
    "queue delete": ("queue", lambda q, t, c: q.delete_message("id-1", "AgAAAA+/=")),
    "queue update visibility": ("queue", lambda q, t, c: q.update_message("id-1", "AgAAAA+/=", visibility_timeout=7)),
    "table batch": (
        "table",
        lambda q, t, c: t.submit_transaction(
            [
                ("upsert", _ENTITY, {"mode": UpdateMode.REPLACE}),
                (
                    "update",
                    {**_ENTITY, "RowKey": "sentinel"},
                    {"mode": UpdateMode.MERGE, "etag": "W/1", "match_condition": MatchConditions.IfNotModified},
                ),
            ]
        ),
    ),
    "table merge": ("table", lambda q, t, c: t.upsert_entity(_ENTITY, mode=UpdateMode.MERGE)),
    "table replace if-match": (
        "table",
        lambda q, t, c: t.update_entity(
            _ENTITY, mode=UpdateMode.REPLACE, etag="W/1", match_condition=MatchConditions.IfNotModified
        ),
    ),
    "table insert": ("table", lambda q, t, c: t.create_entity(_ENTITY)),
    "table point read": ("table", lambda q, t, c: t.get_entity(ODD, "")),
    "table partition query": ("table", lambda q, t, c: _drain(t.query_entities(f"PartitionKey eq '{ODD}'"))),
    "table delete": ("table", lambda q, t, c: t.delete_entity(ODD, "")),
    "blob put": (
        "blob",
        lambda q, t, c: c.upload_blob(
            f"{ODD}/x.json.gz",
            b"\x1f\x8b",
            overwrite=True,
            content_settings=ContentSettings(content_type="application/octet-stream"),
        ),
    ),
    "blob get": ("blob", lambda q, t, c: _read(c.download_blob(f"{ODD}/x.json.gz"))),
    "blob delete": ("blob", lambda q, t, c: c.delete_blob(f"{ODD}/x.json.gz")),
}


async def _drain(pager: Any) -> list[Any]:
    return [item async for item in pager]


async def _read(download: Awaitable[Any]) -> bytes:
    return bytes(await (await download).readall())


async def _run(account: StorageAccount, name: str) -> tuple[str, tuple[str, str, dict[str, str], bytes | None]]:
    service_name, operation = _OPERATIONS[name]
    queues, tables, blobs = account.queue_service(), account.table_service(), account.blob_service()
    session = _Session()
    for client in (queues, tables, blobs):
        client._rest._client = lambda: session  # type: ignore[attr-defined]
    queue = queues.get_queue_client("hub-control-00")
    table = tables.get_table_client("HubHistory")
    container = blobs.get_container_client("hub-largemessages")
    await operation(queue, table, container)
    for client in (queues, tables, blobs):
        await client.close()
    assert len(session.sent) == 1
    return service_name, session.sent[0]


def _sdk_signed(service: str, method: str, url: str, headers: dict[str, str]) -> tuple[str, str]:
    """(string to sign, Authorization) from the SDK's own policy for the same request."""
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    request = PipelineRequest(HttpRequest(method, url, headers=unsigned), PipelineContext(None))
    recorded: list[str] = []
    policy: Any
    if service == "table":
        policy = TablePolicy(AzureNamedKeyCredential(ACCOUNT, KEY))
    else:
        policy = (QueuePolicy if service == "queue" else BlobPolicy)(ACCOUNT, KEY)
    original = policy._add_authorization_header

    def capture(req: Any, string_to_sign: str) -> None:
        recorded.append(string_to_sign)
        original(req, string_to_sign)

    policy._add_authorization_header = capture
    policy.on_request(request)
    return recorded[0], request.http_request.headers["Authorization"]


@pytest.mark.parametrize("name", sorted(_OPERATIONS))
def test_shared_key_signature_equals_the_sdk_policy(name: str) -> None:
    account = _account(AzureNamedKeyCredential(ACCOUNT, KEY))
    service, (method, url, headers, _) = asyncio.run(_run(account, name))
    sdk_string, sdk_authorization = _sdk_signed(service, method, url, headers)
    build = signing.table_string_to_sign if service == "table" else signing.blob_queue_string_to_sign
    path, _, query_text = url.removeprefix(ENDPOINTS[service]).partition("?")
    query = [tuple(p.split("=", 1)) for p in query_text.split("&") if p]
    ours = build(ACCOUNT, method, path, query, headers)  # type: ignore[arg-type]
    assert ours == sdk_string
    assert headers["Authorization"] == sdk_authorization


@pytest.mark.parametrize("name", sorted(_OPERATIONS))
def test_sas_query_equals_azure_core_sas_policy(name: str) -> None:
    sas = "sv=2024-11-04&ss=bqt&srt=sco&sp=rwdlacup&se=2030-01-01T00%3A00%3A00Z&sig=abc%2Bdef%3D"
    _service, (method, url, headers, _) = asyncio.run(_run(_account(AzureSasCredential(sas)), name))
    assert "Authorization" not in headers
    bare = "&".join(p for p in url.partition("?")[2].split("&") if p and p.split("=")[0] not in dict(
        q.split("=", 1) for q in sas.split("&")
    ))
    base = url.partition("?")[0] + (f"?{bare}" if bare else "")
    request = PipelineRequest(HttpRequest(method, base), PipelineContext(None))
    AzureSasCredentialPolicy(AzureSasCredential(sas)).on_request(request)
    assert url == request.http_request.url


def test_development_storage_signs_with_the_azurite_key() -> None:
    account = StorageAccount.from_connection_string("UseDevelopmentStorage=true").with_data_path("lean")
    session = _Session()
    queues = account.queue_service()
    queues._rest._client = lambda: session  # type: ignore[attr-defined]

    async def go() -> None:
        await queues.get_queue_client("q").delete_message("id", "r")
        await queues.close()

    asyncio.run(go())
    method, url, headers, _ = session.sent[0]
    assert url.startswith(f"http://127.0.0.1:10001/{DEV_ACCOUNT_NAME}/q/messages/id?")
    policy_string, authorization = _sdk_signed("queue", method, url, headers)
    assert headers["Authorization"].split(":")[0] == f"SharedKey {DEV_ACCOUNT_NAME}"
    # The SDK policy above was built for ACCOUNT; re-sign with the dev account to compare.
    dev = QueuePolicy(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)
    request = PipelineRequest(
        HttpRequest(method, url, headers={k: v for k, v in headers.items() if k != "Authorization"}),
        PipelineContext(None),
    )
    dev.on_request(request)
    assert request.http_request.headers["Authorization"] == headers["Authorization"]
    assert policy_string.startswith("DELETE\n")
    assert authorization != headers["Authorization"]
