"""Table columns as Azure Table storage returns them, and DTAS's rule for oversized columns.

Pure: shared by the History and Instances row codecs. Readers accept what azure-data-tables returns
(``TablesEntityDatetime``, ``EntityProperty`` for Int64 — duck-typed, so this package imports no SDK)
as well as plain JSON values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import MessageDecodeError
from .netjson import parse_datetime, to_utc, utf16_byte_count

__all__ = [
    "BLOB_NAME_SUFFIX",
    "LARGE_PROPERTY_CANDIDATES",
    "MAX_TABLE_PROPERTY_UTF16_BYTES",
    "blob_name_property",
    "column_bool",
    "column_datetime",
    "column_int",
    "column_string",
    "estimate_entity_size",
    "oversized_properties",
    "unwrap",
]

_INT_TEXT = re.compile(r"^-?[0-9]+$")

LARGE_PROPERTY_CANDIDATES: tuple[str, ...] = (
    "Name",
    "Input",
    "Result",
    "Output",
    "Reason",
    "Details",
    "Correlation",
    "FailureDetails",
    "Tags",
)
"""DTAS ``VariableSizeEntityProperties``: the only columns ever moved to blobs."""

MAX_TABLE_PROPERTY_UTF16_BYTES = 60 * 1024
BLOB_NAME_SUFFIX = "BlobName"
"""A documented breaking-change constant in DTAS (``GetBlobPropertyName``)."""


# --------------------------------------------------------------------------- column readers


def unwrap(value: Any) -> Any:
    """azure-data-tables wraps Int64 (and caller-typed values) in ``EntityProperty(value, edm_type)``."""
    return value.value if hasattr(value, "edm_type") and hasattr(value, "value") else value


def column_string(entity: Mapping[str, Any], name: str) -> str | None:
    value = unwrap(entity.get(name))
    if value is None or isinstance(value, str):
        return value
    raise MessageDecodeError(f"column {name}: expected a string, got {type(value).__name__}")


def column_int(entity: Mapping[str, Any], name: str) -> int | None:
    value = unwrap(entity.get(name))
    if value is None:
        return None
    if isinstance(value, str) and _INT_TEXT.match(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MessageDecodeError(f"column {name}: expected an integer, got {value!r}")


def column_datetime(entity: Mapping[str, Any], name: str) -> datetime | None:
    """Aware UTC; ``TablesEntityDatetime`` is narrowed to a plain datetime."""
    value = unwrap(entity.get(name))
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except MessageDecodeError as exc:
            raise MessageDecodeError(f"column {name}: {exc}") from exc
    if isinstance(value, datetime):
        utc = to_utc(value)
        return datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=utc.tzinfo)
    raise MessageDecodeError(f"column {name}: expected a DateTime, got {type(value).__name__}")


def column_bool(entity: Mapping[str, Any], name: str) -> bool | None:
    value = unwrap(entity.get(name))
    if value is None or isinstance(value, bool):
        return value
    raise MessageDecodeError(f"column {name}: expected a Boolean, got {value!r}")


# --------------------------------------------------------------------------- large properties


def _candidate_strings(entity: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for name in LARGE_PROPERTY_CANDIDATES:  # runs for every history row written: no per-column unwrap
        value = entity.get(name)
        if value is None:
            continue
        if type(value) is not str:
            value = unwrap(value)
            if not isinstance(value, str):
                continue
        if value:
            found.append((name, value))
    return found


def oversized_properties(entity: Mapping[str, Any]) -> list[str]:
    """Columns whose UTF-16 size exceeds DTAS's 60 KiB limit and must move to blobs."""
    return [
        name for name, value in _candidate_strings(entity) if utf16_byte_count(value) > MAX_TABLE_PROPERTY_UTF16_BYTES
    ]


def blob_name_property(prop: str) -> str:
    """``Input`` -> ``InputBlobName``: where the blob name of an offloaded column is stored."""
    return prop + BLOB_NAME_SUFFIX


def estimate_entity_size(entity: Mapping[str, Any]) -> int:
    """DTAS's batch-size estimate: 1 KiB per entity plus the variable-size string columns."""
    return 1024 + sum(utf16_byte_count(value) for _, value in _candidate_strings(entity))
