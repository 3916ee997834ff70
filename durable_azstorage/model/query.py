"""Which instances a query asks for: one value shared by the HTTP API, the clients and the store."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from .status import OrchestrationStatus

__all__ = ["InstanceQuery"]


@dataclass(frozen=True)
class InstanceQuery:
    """DTAS ``OrchestrationInstanceStatusQueryCondition`` plus paging and projection.

    Empty filters match everything. ``created_*`` compare with the Instances row's ``CreatedTime`` (for
    entities: their last operation time), ``updated_*`` with ``LastUpdatedTime``; ``instance_id_prefix``
    matches instance ids (entities start with ``@``) and ``name_prefix`` orchestration names.
    """

    runtime_status: frozenset[OrchestrationStatus] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    name_prefix: str | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    exclude_entities: bool = False
    task_hub_names: frozenset[str] | None = None
    page_size: int = 100
    fetch_input: bool = True
    fetch_output: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")

    @classmethod
    def of(
        cls,
        *,
        runtime_status: Collection[OrchestrationStatus] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        instance_id_prefix: str | None = None,
        name_prefix: str | None = None,
        updated_from: datetime | None = None,
        updated_to: datetime | None = None,
        exclude_entities: bool = False,
        task_hub_names: Collection[str] | None = None,
        page_size: int = 100,
        fetch_payloads: bool | None = None,
        fetch_input: bool = True,
        fetch_output: bool = True,
    ) -> InstanceQuery:
        """Build from keyword filters (any collection of statuses; ``fetch_payloads`` sets both fetches)."""
        if fetch_payloads is not None:
            fetch_input = fetch_output = fetch_payloads
        return cls(
            runtime_status=frozenset(runtime_status) if runtime_status else None,
            created_from=created_from,
            created_to=created_to,
            instance_id_prefix=instance_id_prefix or None,
            name_prefix=name_prefix or None,
            updated_from=updated_from,
            updated_to=updated_to,
            exclude_entities=exclude_entities,
            task_hub_names=frozenset(task_hub_names) if task_hub_names else None,
            page_size=page_size,
            fetch_input=fetch_input,
            fetch_output=fetch_output,
        )
