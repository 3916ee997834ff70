"""``TableClient`` with the hot entity operations on the lean transport.

Subclassing keeps every other method (table create/delete, ``list_entities``, paged queries
with ``results_per_page``/``by_page``, access policies) on the SDK, and keeps the type the
stores already accept. Return values and errors are the SDK's: ``TableEntity`` with
``metadata``, ``{"etag": …}`` dicts, ``ResourceNotFoundError``/``ResourceExistsError``/
``ResourceModifiedError``, ``TableTransactionError`` carrying the failing operation's status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from .batch import BatchRequest, build_batch, parse_batch_response
from .entities import decode_entity, entity_json
from .transport import RestResponse, RestTransport
from .urls import quote_query_value, table_key_path

__all__ = ["LeanTableClient"]

_MINIMAL = "application/json;odata=minimalmetadata"
_JSON = "application/json"
_BASE_HEADERS = {"DataServiceVersion": "3.0", "Accept": _JSON}


def _if_match(entity: Mapping[str, Any], kwargs: Mapping[str, Any]) -> str:
    """``_get_match_condition``: IfNotModified needs an etag; otherwise ``*``."""
    condition = kwargs.get("match_condition")
    etag = kwargs.get("etag")
    if condition and not etag and isinstance(entity, TableEntity):
        etag = entity.metadata.get("etag")
    if condition == MatchConditions.IfNotModified:
        if not etag:
            raise ValueError("IfNotModified must be specified with etag.")
        return str(etag)
    if condition not in (None, MatchConditions.Unconditionally):
        raise ValueError(f"Unsupported match condition: {condition}")
    if etag:
        raise ValueError("Etag is not supported for an Unconditional operation.")
    return "*"


def _metadata(response: RestResponse) -> dict[str, Any]:
    headers = response.headers
    return {"date": headers.get("Date"), "etag": headers.get("ETag"), "version": headers.get("x-ms-version")}


class LeanTableClient(TableClient):
    """Made by :func:`adopt` from an SDK-built client; ``_rest`` is the shared transport."""

    _rest: RestTransport

    @classmethod
    def adopt(cls, client: TableClient, transport: RestTransport) -> LeanTableClient:
        client.__class__ = cls
        lean: LeanTableClient = client  # type: ignore[assignment]
        lean._rest = transport
        return lean

    # ------------------------------------------------------------- single entity

    async def _send(self, method: str, path: str, **kwargs: Any) -> RestResponse:
        response = await self._rest.send(method, path, **kwargs)
        if response.status >= 300:
            raise response.error()
        return response

    async def create_entity(self, entity: Any, **kwargs: Any) -> dict[str, Any]:
        headers = {
            **_BASE_HEADERS,
            "Content-Type": "application/json;odata=nometadata",
            "Accept": _MINIMAL,
            "Prefer": "return-no-content",
        }
        response = await self._send("POST", f"/{self.table_name}", headers=headers, body=entity_json(entity))
        return _metadata(response)

    async def upsert_entity(self, entity: Any, mode: Any = UpdateMode.MERGE, **kwargs: Any) -> dict[str, Any]:
        method = "PUT" if mode == UpdateMode.REPLACE else "PATCH"
        return await self._write(method, entity, None)

    async def update_entity(self, entity: Any, mode: Any = UpdateMode.MERGE, **kwargs: Any) -> dict[str, Any]:
        method = "PUT" if mode == UpdateMode.REPLACE else "PATCH"
        return await self._write(method, entity, _if_match(entity, kwargs))

    async def _write(self, method: str, entity: Mapping[str, Any], if_match: str | None) -> dict[str, Any]:
        headers = {**_BASE_HEADERS, "Content-Type": _JSON}
        if if_match is not None:
            headers["If-Match"] = if_match
        path = table_key_path(self.table_name, entity["PartitionKey"], entity["RowKey"])
        response = await self._send(method, path, headers=headers, body=entity_json(entity))
        return _metadata(response)

    async def delete_entity(self, *args: Any, **kwargs: Any) -> None:
        entity = kwargs.pop("entity", None) or (args[0] if args and isinstance(args[0], Mapping) else None)
        if entity is not None:
            partition_key, row_key = entity["PartitionKey"], entity["RowKey"]
        else:
            partition_key = kwargs.pop("partition_key", None) if "partition_key" in kwargs else args[0]
            row_key = kwargs.pop("row_key", None) if "row_key" in kwargs else args[1]
        headers = {**_BASE_HEADERS, "Accept": _MINIMAL, "If-Match": _if_match(entity or {}, kwargs)}
        response = await self._rest.send(
            "DELETE", table_key_path(self.table_name, partition_key, row_key), headers=headers
        )
        if response.status >= 300 and response.status != 404:
            raise response.error()

    async def get_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> TableEntity:
        query = _select(kwargs.get("select"))
        headers = {**_BASE_HEADERS, "Accept": _MINIMAL}
        path = table_key_path(self.table_name, partition_key, row_key)
        response = await self._send("GET", path, headers=headers, query=query)
        return decode_entity(json.loads(response.body))

    # ------------------------------------------------------------------- queries

    def query_entities(self, query_filter: str, **kwargs: Any) -> Any:
        """Plain iteration of a filter runs here; parameters and paging stay on the SDK."""
        if kwargs.get("parameters") or kwargs.get("results_per_page") or set(kwargs) - {"select"}:
            return super().query_entities(query_filter, **kwargs)
        return self._query(query_filter, kwargs.get("select"))

    async def _query(self, query_filter: str, select: Any) -> AsyncIterator[TableEntity]:
        headers = {**_BASE_HEADERS, "Accept": _MINIMAL}
        token: tuple[str | None, str | None] = (None, None)
        while True:
            query = [*_select(select), ("$filter", quote_query_value(query_filter))]
            if token[0] is not None:
                query.append(("NextPartitionKey", quote_query_value(token[0])))
            if token[1] is not None:
                query.append(("NextRowKey", quote_query_value(token[1])))
            response = await self._send("GET", f"/{self.table_name}()", headers=headers, query=query)
            for element in json.loads(response.body).get("value", []):
                yield decode_entity(element)
            token = (
                response.headers.get("x-ms-continuation-NextPartitionKey"),
                response.headers.get("x-ms-continuation-NextRowKey"),
            )
            if token[0] is None and token[1] is None:
                return

    # -------------------------------------------------------------- transactions

    async def submit_transaction(self, operations: Any, **kwargs: Any) -> list[Mapping[str, Any]]:
        requests = [self._batch_request(op) for op in operations]
        if not requests:
            return []
        content_type, body = build_batch(requests, self._rest.api_version)
        headers = {
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": content_type,
            "Accept": _JSON,
        }
        response = await self._rest.send("POST", "/$batch", headers=headers, body=body)
        if response.status != 202:
            raise response.error()
        parts = parse_batch_response(response.body)
        failed = [part for part in parts if not 200 <= part.status < 300]
        if failed:
            part = failed[0]
            raise RestResponse(part.status, part.reason, part.headers, part.body).error(TableTransactionError)
        return [{"etag": part.headers["etag"]} if "etag" in part.headers else {} for part in parts]

    def _batch_request(self, operation: Any) -> BatchRequest:
        kind, entity = str(getattr(operation[0], "value", operation[0])).lower(), operation[1]
        options: Mapping[str, Any] = operation[2] if len(operation) > 2 else {}
        prefix = self._rest.origin + self._rest.base_path
        if kind == "create":
            headers = [("Accept", _MINIMAL), ("Prefer", "return-no-content")]
            return BatchRequest("POST", f"{prefix}/{self.table_name}", headers, entity_json(entity))
        url = prefix + table_key_path(self.table_name, entity["PartitionKey"], entity["RowKey"])
        mode = options.get("mode", UpdateMode.MERGE)
        if kind == "upsert":
            method = "PUT" if mode == UpdateMode.REPLACE else "PATCH"
            return BatchRequest(method, url, [("Accept", _JSON)], entity_json(entity))
        if kind == "update":
            method = "PUT" if mode == UpdateMode.REPLACE else "PATCH"
            headers = [("Accept", _JSON), ("If-Match", _if_match(entity, options))]
            return BatchRequest(method, url, headers, entity_json(entity))
        if kind == "delete":
            return BatchRequest("DELETE", url, [("Accept", _MINIMAL), ("If-Match", _if_match(entity, options))], b"")
        raise ValueError(f"unknown transaction operation {operation[0]!r}")


def _select(select: Any) -> list[tuple[str, str]]:
    if not select:
        return []
    names = [select] if isinstance(select, str) else list(select)
    return [("$select", quote_query_value(",".join(names)))]
