"""OData literals for Table service filters: the one place a value is quoted into a query."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["odata_datetime", "odata_string"]


def odata_string(value: str) -> str:
    """A string literal; doubling single quotes is the only escape the Table service needs."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    """A ``datetime'…'`` literal of ``DateTime.ToString("O")`` in UTC; naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    return "datetime'" + utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z'"
