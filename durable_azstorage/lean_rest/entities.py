"""Table entities <-> OData JSON, with the SDK's typing rules (tested for equality with it).

Writing: ``str`` → Edm.String, ``int`` → Int32 (larger is an error, as in the SDK: wrap it in
``EntityProperty(v, EdmType.INT64)``), ``float`` → Edm.Double, ``datetime`` → Edm.DateTime in
UTC, ``bool`` untyped, ``UUID``/``bytes`` → Guid/Binary, ``(value, EdmType)`` tuples as typed.
Reading returns the SDK's ``TableEntity`` with ``metadata`` (etag, timestamp), Int64 as
``EntityProperty`` and DateTime as ``TablesEntityDatetime`` keeping the service's 7 digits.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from urllib.parse import quote
from uuid import UUID

from azure.data.tables import EdmType, EntityProperty, TableEntity
from azure.data.tables._deserialize import TablesEntityDatetime

__all__ = ["decode_entity", "encode_entity", "entity_json", "etag_from_timestamp", "parse_datetime"]

_INT32 = 2**31
_INT64 = 2**63


def _datetime_text(value: datetime) -> str:
    service_value = getattr(value, "tables_service_value", None)
    if service_value:
        return str(service_value)
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _float_value(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _typed(value: Any, edm: EdmType) -> tuple[str | None, Any]:
    if edm is EdmType.INT64:
        number = int(value)
        if not -_INT64 <= number < _INT64:
            raise TypeError(f"{value} is too large to be cast to type {edm}.")
        return edm.value, str(value)
    if edm is EdmType.INT32:
        return edm.value, _int32(value)
    if edm is EdmType.DATETIME:
        return edm.value, value if isinstance(value, str) else _datetime_text(value)
    if edm is EdmType.DOUBLE:
        return edm.value, value if isinstance(value, str) else _float_value(value)
    if edm is EdmType.BINARY:
        return edm.value, base64.b64encode(value).decode("ascii")
    if edm is EdmType.BOOLEAN:
        return edm.value, value
    return edm.value, str(value)  # STRING, GUID


def _int32(value: Any) -> int:
    number = int(value)
    if not -_INT32 <= number < _INT32:
        raise TypeError(f"{value} is too large to be cast to type {EdmType.INT32}.")
    return number


def _property(value: Any) -> tuple[str | None, Any]:
    kind = type(value)
    if kind is str:
        return "Edm.String", value
    if kind is bool:
        return None, value
    if kind is int:
        return None, _int32(value)
    if isinstance(value, Enum):
        return "Edm.String", str(value)
    if isinstance(value, datetime):
        return "Edm.DateTime", _datetime_text(value)
    if isinstance(value, tuple):
        return _typed(value[0], EdmType(value[1]))
    if kind is float:
        return "Edm.Double", _float_value(value)
    if kind is UUID:
        return "Edm.Guid", str(value)
    if kind is bytes:
        return "Edm.Binary", base64.b64encode(value).decode("ascii")
    raise TypeError(f"Type not supported when sending data to the service: {kind}.")


def encode_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object the SDK's ``_add_entity_properties`` builds for ``entity``."""
    properties: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None or (isinstance(value, tuple) and value[0] is None):
            continue
        edm, wire = _property(value)
        properties[name] = wire
        if edm:
            properties[name + "@odata.type"] = edm
    return properties


def entity_json(entity: Mapping[str, Any]) -> bytes:
    return json.dumps(encode_entity(entity), separators=(",", ":")).encode("utf-8")


def parse_datetime(value: str) -> TablesEntityDatetime:
    """``2024-01-02T03:04:05.1234567Z`` → an aware datetime that remembers the original text."""
    try:
        date, _, clock = value.rstrip("Z").partition("T")
        hms, _, fraction = clock.partition(".")
        parsed = TablesEntityDatetime(
            int(date[0:4]),
            int(date[5:7]),
            int(date[8:10]),
            int(hms[0:2]),
            int(hms[3:5]),
            int(hms[6:8]),
            int((fraction + "000000")[:6]) if fraction else 0,
            tzinfo=timezone.utc,
        )
    except (ValueError, IndexError) as exc:
        raise ValueError(f"invalid Edm.DateTime {value!r}") from exc
    parsed._service_value = value  # type: ignore[attr-defined]
    return parsed


def etag_from_timestamp(timestamp: str) -> str:
    return "W/\"datetime'" + quote(timestamp) + "'\""


def _converted(value: Any, edm: str) -> Any:
    if edm == "Edm.DateTime":
        return parse_datetime(value)
    if edm == "Edm.Int64":
        return EntityProperty(int(value), EdmType.INT64)
    if edm == "Edm.Double":
        return float(value)
    if edm == "Edm.Int32":
        return int(value)
    if edm == "Edm.Guid":
        return UUID(value)
    if edm == "Edm.Binary":
        return base64.b64decode(value)
    if edm == "Edm.String":
        return value
    return EntityProperty(EdmType(edm), value)  # the SDK's (odd) argument order


def decode_entity(element: Mapping[str, Any]) -> TableEntity:
    """The SDK's ``_convert_to_entity``: the same keys, types and metadata."""
    entity = TableEntity()
    odata: dict[str, Any] = {}
    types: dict[str, str] = {}
    properties: dict[str, Any] = {}
    for name, value in element.items():
        if name.startswith("odata."):
            odata[name[6:]] = value
        elif name.endswith("@odata.type"):
            types[name[:-11]] = value
        else:
            properties[name] = value
    for key in ("PartitionKey", "RowKey"):
        if properties.get(key) is not None:
            entity[key] = properties.pop(key)
        else:
            properties.pop(key, None)
    timestamp = properties.pop("Timestamp", None)
    for name, value in properties.items():
        edm = types.get(name)
        if edm is None:
            if isinstance(value, int) and not isinstance(value, bool) and not -_INT32 <= value < _INT32:
                entity[name] = EntityProperty(value, EdmType.INT64)
            else:
                entity[name] = value
        else:
            entity[name] = _converted(value, edm)
    etag = odata.pop("etag", None)
    odata.pop("metadata", None)
    if timestamp:
        etag = etag or etag_from_timestamp(timestamp)
        timestamp = parse_datetime(timestamp)
    odata.update({"etag": etag, "timestamp": timestamp})
    entity._metadata = odata  # type: ignore[assignment]
    return entity
