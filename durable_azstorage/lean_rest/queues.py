"""``QueueClient`` with put, receive, delete and update-visibility on the lean transport.

Messages are sent as the SDK sends them by default (no base64: the text XML-escaped inside
``<QueueMessage><MessageText>``), so both paths read each other's messages. Queue create,
delete, properties, peek and clear stay on the SDK.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from .transport import RestResponse, RestTransport
from .urls import quote_query_value

__all__ = ["LeanQueueClient", "parse_http_date", "parse_messages"]

_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_MESSAGE = re.compile(rb"<QueueMessage>(.*?)</QueueMessage>", re.S)
_FIELD = re.compile(rb"<(\w+)>([^<]*)</\1>|<(\w+)\s*/>")
_XML_HEADER = b"<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"


def parse_http_date(value: str | None) -> datetime | None:
    """``Mon, 30 Nov 2026 10:21:03 GMT`` → aware UTC datetime (locale-free, no strptime)."""
    if not value:
        return None
    try:
        _, day, month, year, clock, _ = value.split(" ")
        hour, minute, second = clock.split(":")
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"invalid HTTP date {value!r}") from exc


_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name[0] != "#":
        return _NAMED[name]
    return chr(int(name[2:], 16) if name[1] in "xX" else int(name[1:]))


def xml_unescape(text: str) -> str:
    return _ENTITY.sub(_entity, text) if "&" in text else text


def _escape(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8")


def parse_messages(body: bytes) -> list[QueueMessage]:
    """``QueueMessagesList`` of Put/Get Messages → the SDK's ``QueueMessage`` objects."""
    messages = []
    for block in _MESSAGE.findall(body):
        fields: dict[str, str] = {}
        for name, value, empty in _FIELD.findall(block):
            if empty:
                fields[empty.decode("ascii")] = ""
            else:
                fields[name.decode("ascii")] = xml_unescape(value.decode("utf-8"))
        count = fields.get("DequeueCount")
        messages.append(
            QueueMessage(
                content=fields.get("MessageText"),
                id=fields.get("MessageId"),
                inserted_on=parse_http_date(fields.get("InsertionTime")),
                expires_on=parse_http_date(fields.get("ExpirationTime")),
                dequeue_count=int(count) if count else None,
                pop_receipt=fields.get("PopReceipt"),
                next_visible_on=parse_http_date(fields.get("TimeNextVisible")),
            )
        )
    return messages


class _ReceivedPager:
    """``async for`` over the messages, or ``by_page()`` yielding the single page."""

    def __init__(self, client: LeanQueueClient, query: list[tuple[str, str]]) -> None:
        self._client = client
        self._query = query

    async def __aiter__(self) -> AsyncIterator[QueueMessage]:
        for message in await self._client._receive(self._query):
            yield message

    async def by_page(self) -> AsyncIterator[AsyncIterator[QueueMessage]]:
        yield self.__aiter__()


class LeanQueueClient(QueueClient):
    """Made by :meth:`adopt` from an SDK-built client; ``_rest`` is the shared transport."""

    _rest: RestTransport

    @classmethod
    def adopt(cls, client: QueueClient, transport: RestTransport) -> LeanQueueClient:
        client.__class__ = cls
        lean: LeanQueueClient = client  # type: ignore[assignment]
        lean._rest = transport
        return lean

    @property
    def _messages_path(self) -> str:
        return f"/{self.queue_name}/messages"

    async def _send(self, method: str, path: str, **kwargs: Any) -> RestResponse:
        response = await self._rest.send(method, path, **kwargs)
        if response.status >= 300:
            raise response.error()
        return response

    async def send_message(
        self,
        content: Any,
        *,
        visibility_timeout: int | None = None,
        time_to_live: int | None = None,
        **kwargs: Any,
    ) -> QueueMessage:
        query: list[tuple[str, str]] = []
        if visibility_timeout is not None:
            query.append(("visibilitytimeout", str(visibility_timeout)))
        if time_to_live is not None:
            query.append(("messagettl", str(time_to_live)))
        body = _XML_HEADER + _escape(str(content)) + b"</MessageText></QueueMessage>"
        headers = {"Content-Type": "application/xml", "Accept": "application/xml"}
        response = await self._send("POST", self._messages_path, query=query, headers=headers, body=body)
        sent = parse_messages(response.body)[0]
        sent.content = content
        return sent

    def receive_messages(self, **kwargs: Any) -> _ReceivedPager:  # type: ignore[override]
        """One ``Get Messages`` call (``max_messages`` ≤ 32), iterable like the SDK's pager."""
        count = int(kwargs.get("max_messages") or kwargs.get("messages_per_page") or 1)
        query = [("numofmessages", str(min(count, 32)))]
        if kwargs.get("visibility_timeout") is not None:
            query.append(("visibilitytimeout", str(kwargs["visibility_timeout"])))
        return _ReceivedPager(self, query)

    async def _receive(self, query: list[tuple[str, str]]) -> list[QueueMessage]:
        response = await self._send("GET", self._messages_path, query=query, headers={"Accept": "application/xml"})
        return parse_messages(response.body)

    async def delete_message(self, message: Any, pop_receipt: str | None = None, **kwargs: Any) -> None:
        message_id = str(getattr(message, "id", message))
        receipt = pop_receipt if pop_receipt is not None else getattr(message, "pop_receipt", None)
        if receipt is None:
            raise ValueError("pop_receipt must be present")
        query = [("popreceipt", quote_query_value(receipt))]
        await self._send("DELETE", f"{self._messages_path}/{message_id}", query=query)

    async def update_message(
        self,
        message: Any,
        pop_receipt: str | None = None,
        content: Any = None,
        *,
        visibility_timeout: int | None = None,
        **kwargs: Any,
    ) -> QueueMessage:
        if content is not None:  # rewriting the text is not a hot operation
            return await super().update_message(
                message, pop_receipt, content, visibility_timeout=visibility_timeout, **kwargs
            )
        message_id = str(getattr(message, "id", message))
        receipt = pop_receipt if pop_receipt is not None else getattr(message, "pop_receipt", None)
        if receipt is None:
            raise ValueError("pop_receipt must be present")
        query = [("popreceipt", quote_query_value(receipt)), ("visibilitytimeout", str(visibility_timeout or 0))]
        response = await self._send("PUT", f"{self._messages_path}/{message_id}", query=query)
        return QueueMessage(
            content=getattr(message, "content", None),
            id=message_id,
            inserted_on=getattr(message, "inserted_on", None),
            expires_on=getattr(message, "expires_on", None),
            dequeue_count=getattr(message, "dequeue_count", None),
            pop_receipt=response.headers.get("x-ms-popreceipt"),
            next_visible_on=parse_http_date(response.headers.get("x-ms-time-next-visible")),
        )
