"""The ``{Hub}Partitions`` table: one lease row per control queue (DTAS partition manager v3).

This store reads and writes lease rows; :mod:`durable_azstorage.worker.partition_manager` decides
what to claim, renew, steal and hand over. Every write is a Replace with ``If-Match`` on the row's
eTag, so two workers can never both believe they won the same row: a lost race raises
:class:`LeaseConflictError` and the caller re-reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ..errors import DurableAzStorageError, TaskHubNotFoundError

__all__ = ["Lease", "LeaseConflictError", "PartitionTable"]

_ALL_ROWS = "PartitionKey eq ''"


class LeaseConflictError(DurableAzStorageError):
    """A partition row changed between our read and our write (HTTP 412): read again."""


@dataclass
class Lease:
    """One row of the Partitions table (DTAS ``TableLease``)."""

    name: str
    current_owner: str | None
    next_owner: str | None
    owned_since: datetime | None
    last_renewal: datetime | None
    expires_at: datetime | None
    is_draining: bool
    etag: str

    @classmethod
    def from_entity(cls, entity: Any) -> Lease:
        return cls(
            name=str(entity["RowKey"]),
            current_owner=entity.get("CurrentOwner") or None,
            next_owner=entity.get("NextOwner") or None,
            owned_since=entity.get("OwnedSince"),
            last_renewal=entity.get("LastRenewal"),
            expires_at=entity.get("ExpiresAt"),
            is_draining=bool(entity.get("IsDraining", False)),
            etag=str(entity.metadata["etag"]),
        )

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": "", "RowKey": self.name, "IsDraining": self.is_draining}
        for column, value in (
            ("CurrentOwner", self.current_owner),
            ("NextOwner", self.next_owner),
            ("OwnedSince", self.owned_since),
            ("LastRenewal", self.last_renewal),
            ("ExpiresAt", self.expires_at),
        ):
            if value is not None:
                entity[column] = value
        return entity


class PartitionTable:
    """Lease rows of one hub: read, create, conditional replace."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def name(self) -> str:
        return str(self._table.table_name)

    async def read_all(self) -> list[Lease]:
        """Every lease row; :class:`TaskHubNotFoundError` when the table does not exist."""
        try:
            return [Lease.from_entity(e) async for e in self._table.query_entities(_ALL_ROWS)]
        except ResourceNotFoundError as exc:
            raise TaskHubNotFoundError(f"table {self.name} does not exist") from exc

    async def count(self) -> int | None:
        """How many partitions the hub was created with; None when the table is missing or empty."""
        try:
            rows = [e async for e in self._table.query_entities(_ALL_ROWS, select=["RowKey"])]
        except ResourceNotFoundError:
            return None
        return len(rows) or None

    async def create_rows(self, queue_names: Iterable[str]) -> None:
        """One free row per control queue; rows that exist are left as they are (idempotent)."""

        async def create(name: str) -> None:
            try:
                await self._table.create_entity({"PartitionKey": "", "RowKey": name})
            except ResourceExistsError:
                pass

        await asyncio.gather(*(create(name) for name in queue_names))

    async def replace(self, lease: Lease) -> None:
        """Write the row if nobody changed it since we read it, and take its new eTag."""
        try:
            result = await self._table.update_entity(
                lease.to_entity(),
                mode=UpdateMode.REPLACE,
                etag=lease.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as exc:
            if exc.status_code == 412:
                raise LeaseConflictError(f"partition {lease.name} changed since it was read") from exc
            raise
        lease.etag = str(result.get("etag", lease.etag))
