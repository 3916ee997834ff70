"""Percent-encoding as the SDK's requests reach the wire (azure-core → aiohttp → yarl).

Signing covers the path exactly as sent, so the lean path encodes once, the same way, and
sends the URL untouched (``encoded=True``).
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["quote_blob_name", "quote_key", "quote_query_value", "table_key_path"]

_PATH_SAFE = "!$&'()*,;=:@"
_QUERY_SAFE = "/?:@!$'()*,;"


def quote_key(value: str) -> str:
    """A PartitionKey/RowKey inside ``Table(PartitionKey='…',RowKey='…')``: quotes doubled."""
    return quote(value.replace("'", "''"), safe=_PATH_SAFE)


def table_key_path(table: str, partition_key: str, row_key: str) -> str:
    return f"/{table}(PartitionKey='{quote_key(partition_key)}',RowKey='{quote_key(row_key)}')"


def quote_blob_name(name: str) -> str:
    return quote(name, safe=_PATH_SAFE + "/")


def quote_query_value(value: str) -> str:
    return quote(value, safe=_QUERY_SAFE)
