"""Lean-path codecs against the SDK's: entity JSON both ways, batch answers, retries, tokens."""

from __future__ import annotations

import asyncio
import json
import time
import typing
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError, ServiceRequestError
from azure.data.tables import EdmType, EntityProperty
from azure.data.tables._deserialize import _convert_to_entity
from azure.data.tables._serialize import _add_entity_properties

from durable_azstorage.lean_rest.auth import TokenAuthorizer
from durable_azstorage.lean_rest.batch import parse_batch_response
from durable_azstorage.lean_rest.entities import decode_entity, encode_entity
from durable_azstorage.lean_rest.errors import service_error
from durable_azstorage.lean_rest.queues import parse_messages
from durable_azstorage.lean_rest.transport import RestTransport, RetrySettings

_ENTITY: dict[str, Any] = {
    "PartitionKey": "p'1",
    "RowKey": "0000000000000000",
    "Text": "hé \"x\"",
    "Int": 5,
    "Negative": -(2**31),
    "Big": EntityProperty(2**40, EdmType.INT64),
    "When": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
    "WhenNoFraction": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    "Local": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
    "Flag": True,
    "Ratio": 1.5,
    "NotANumber": float("nan"),
    "Id": uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833"),
    "Raw": b"\x00\x01",
    "Skipped": None,
}


def test_encoding_equals_the_sdk() -> None:
    assert encode_entity(_ENTITY) == _add_entity_properties(_ENTITY)


def test_int32_overflow_is_a_type_error_as_in_the_sdk() -> None:
    with pytest.raises(TypeError):
        encode_entity({"PartitionKey": "p", "RowKey": "r", "Big": 2**40})
    with pytest.raises(TypeError):
        _add_entity_properties({"PartitionKey": "p", "RowKey": "r", "Big": 2**40})


def test_decoding_equals_the_sdk() -> None:
    element = {
        "odata.metadata": "https://x/$metadata#T/@Element",
        "odata.etag": "W/\"datetime'2024-01-02T03%3A04%3A05.1234567Z'\"",
        "PartitionKey": "p",
        "RowKey": "r",
        "Timestamp": "2024-01-02T03:04:05.1234567Z",
        "Text": "x",
        "Int": 7,
        "Big@odata.type": "Edm.Int64",
        "Big": "1099511627776",
        "Untyped64": 2**40,
        "When@odata.type": "Edm.DateTime",
        "When": "2024-01-02T03:04:05.1234567Z",
        "WhenShort@odata.type": "Edm.DateTime",
        "WhenShort": "2024-01-02T03:04:05Z",
        "Ratio": 1.5,
        "RatioTyped@odata.type": "Edm.Double",
        "RatioTyped": "Infinity",
        "Id@odata.type": "Edm.Guid",
        "Id": "c9da6455-213d-42c9-9a79-3e9149a57833",
        "Raw@odata.type": "Edm.Binary",
        "Raw": "AAE=",
        "Flag": False,
    }
    ours, sdk = decode_entity(element), _convert_to_entity(dict(element))
    assert dict(ours) == dict(sdk)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in sdk.items()}
    assert ours.metadata == sdk.metadata
    assert ours["When"].tables_service_value == sdk["When"].tables_service_value
    # A round trip keeps the service's seven fractional digits, as the SDK does.
    assert encode_entity(ours)["When"] == _add_entity_properties(sdk)["When"] == element["When"]


def test_etag_is_made_from_timestamp_when_absent() -> None:
    element = {"PartitionKey": "p", "RowKey": "r", "Timestamp": "2024-01-02T03:04:05.1Z"}
    assert decode_entity(element).metadata == _convert_to_entity(dict(element)).metadata


def test_batch_error_part_is_found() -> None:
    body = (
        b"--batchresponse_a\r\nContent-Type: multipart/mixed; boundary=changesetresponse_b\r\n\r\n"
        b"--changesetresponse_b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"HTTP/1.1 412 Precondition Failed\r\nContent-ID: 1\r\nContent-Type: application/json\r\n\r\n"
        b'{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US",'
        b'"value":"1:The update condition specified in the request was not satisfied.\\nRequestId:x"}}}\r\n'
        b"--changesetresponse_b--\r\n--batchresponse_a--\r\n"
    )
    (part,) = parse_batch_response(body)
    assert part.status == 412 and part.headers["content-id"] == "1"
    error = service_error(part.status, part.reason, part.headers, part.body)
    assert isinstance(error, ResourceModifiedError) and error.status_code == 412
    assert error.error_code == "UpdateConditionNotSatisfied"  # type: ignore[attr-defined]


def test_error_types_by_status() -> None:
    xml = b"<?xml version=\"1.0\"?><Error><Code>MessageNotFound</Code><Message>gone</Message></Error>"
    assert isinstance(service_error(404, "Not Found", {}, xml), ResourceNotFoundError)
    assert isinstance(service_error(409, "Conflict", {}, b""), ResourceExistsError)
    assert service_error(404, "Not Found", {}, xml).error_code == "MessageNotFound"  # type: ignore[attr-defined]


def test_queue_message_xml() -> None:
    body = (
        b"<QueueMessagesList><QueueMessage><MessageId>1</MessageId><InsertionTime>Mon, 30 Nov 2026 10:21:03 GMT"
        b"</InsertionTime><PopReceipt>r</PopReceipt><DequeueCount>3</DequeueCount>"
        b"<MessageText>&lt;a&gt; &amp;amp; &#x41;&#66; \xc3\xa9</MessageText></QueueMessage></QueueMessagesList>"
    )
    (message,) = parse_messages(body)
    assert message.content == "<a> &amp; AB é"
    assert message.dequeue_count == 3
    assert message.inserted_on == datetime(2026, 11, 30, 10, 21, 3, tzinfo=timezone.utc)


class _FlakySession:
    closed = False

    def __init__(self, failures: list[Any]) -> None:
        self.failures = failures
        self.calls = 0

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        self.calls += 1
        outcome = self.failures.pop(0) if self.failures else 204
        if isinstance(outcome, Exception):
            raise outcome

        class _R:
            status = outcome
            reason = ""
            headers: typing.ClassVar[dict[str, str]] = {}

            async def read(self) -> bytes:
                return b""

            async def __aenter__(self) -> Any:
                return self

            async def __aexit__(self, *a: object) -> None:
                return None

        return _R()


class _NoAuth:
    async def authorize(self, *args: Any) -> None:
        return None


def _transport(session: _FlakySession, total: int = 3) -> RestTransport:
    transport = RestTransport(
        "http://127.0.0.1:1/acct", "queue", _NoAuth(), api_version="v", retry=RetrySettings(total=total, initial=0.001)
    )
    transport._client = lambda: session  # type: ignore[method-assign]
    return transport


def test_retries_on_throttling_and_connection_errors() -> None:
    session = _FlakySession([503, 429, aiohttp.ServerDisconnectedError()])
    response = asyncio.run(_transport(session).send("DELETE", "/q/messages/1"))
    assert response.status == 204 and session.calls == 4


def test_gives_up_with_azure_core_error_types() -> None:
    refused = ConnectionRefusedError(111, "refused")
    session = _FlakySession([refused, refused])
    with pytest.raises(ServiceRequestError):
        asyncio.run(_transport(session, total=1).send("GET", "/q/messages"))
    assert asyncio.run(_transport(_FlakySession([500, 500]), total=1).send("GET", "/q")).status == 500


def test_no_retry_on_client_errors() -> None:
    session = _FlakySession([404])
    assert asyncio.run(_transport(session).send("GET", "/q")).status == 404 and session.calls == 1


def test_backoff_grows_with_jitter() -> None:
    retry = RetrySettings(initial=1, base=2, maximum=10, jitter=0.2)
    assert 0.8 <= retry.delay(0) <= 1.2 and 3.2 <= retry.delay(2) <= 4.8 and retry.delay(9) <= 12
    assert retry.delay(0, "3") == 3


def test_token_is_refreshed_before_expiry() -> None:
    class _Credential:
        calls = 0

        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            type(self).calls += 1
            expires = time.time() + (100 if type(self).calls == 1 else 3600)
            return AccessToken(f"t{type(self).calls}", int(expires))

    authorizer = TokenAuthorizer(_Credential())  # type: ignore[arg-type]

    async def twice() -> list[str]:
        seen = []
        for _ in range(3):
            headers: typing.ClassVar[dict[str, str]] = {}
            await authorizer.authorize("queue", "GET", "/", [], headers)
            seen.append(headers["Authorization"])
        return seen

    # The first token expires within the 5-minute margin, so the next request refreshes it.
    assert asyncio.run(twice()) == ["Bearer t1", "Bearer t2", "Bearer t2"]


def test_batch_json_is_plain_json() -> None:
    assert json.loads(json.dumps(encode_entity({"PartitionKey": "p", "RowKey": "r", "A": 1}))) == {
        "PartitionKey": "p",
        "PartitionKey@odata.type": "Edm.String",
        "RowKey": "r",
        "RowKey@odata.type": "Edm.String",
        "A": 1,
    }
