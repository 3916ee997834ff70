"""Task hub names and every resource name DTAS derives from them.

Queue and container names are lowercased; table names keep the hub's case (Azure
tables are case-insensitive but case-preserving), exactly as DurableTask.AzureStorage.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..errors import ConfigurationError, InvalidInstanceIdError, InvalidTaskHubNameError

__all__ = [
    "DEFAULT_PARTITION_COUNT",
    "MAX_INSTANCE_ID_LENGTH",
    "MAX_PARTITION_COUNT",
    "TaskHubNames",
    "suggest_task_hub_name",
    "validate_instance_id",
    "validate_partition_count",
    "validate_task_hub_name",
]

DEFAULT_PARTITION_COUNT = 4
MAX_PARTITION_COUNT = 16
MAX_INSTANCE_ID_LENGTH = 256
_HUB_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,49}$")
_FORBIDDEN_IN_NEW_IDS = set("/\\#?")


def suggest_task_hub_name(name: str) -> str:
    """The Durable Functions sanitiser (``IsSanitizedHubName``): a valid name close to ``name``."""
    kept = "".join(ch for ch in name if ch.isascii() and ch.isalnum())
    if kept and kept[0].isdigit():
        kept = "t" + kept
    kept = kept[:45]
    if not kept:
        return "DefaultTaskHub"
    if len(kept) < 3:
        kept += "Hub"
    return kept


def validate_task_hub_name(name: str) -> str:
    """Return ``name`` if every derived queue, table and container name is legal.

    The rule is Durable Functions' (net effect ``^[A-Za-z][A-Za-z0-9]{2,49}$``); DTAS alone
    would accept names that later fail at queue or container creation.
    """
    if not isinstance(name, str) or not name:
        raise InvalidTaskHubNameError(str(name), "the name is empty", "DefaultTaskHub")
    if _HUB_RE.match(name):
        return name
    if not name[0].isascii() or not name[0].isalpha():
        reason = "it must start with a letter"
    elif len(name) < 3:
        reason = "it is shorter than 3 characters"
    elif len(name) > 50:
        reason = f"it is {len(name)} characters long (at most 50)"
    else:
        bad = sorted({ch for ch in name if not (ch.isascii() and ch.isalnum())})
        reason = "it contains characters other than letters and digits: " + " ".join(repr(c) for c in bad)
    raise InvalidTaskHubNameError(name, reason, suggest_task_hub_name(name))


def validate_partition_count(count: int) -> int:
    """DTAS accepts 1..16 control queues; it never re-partitions an existing hub."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PARTITION_COUNT:
        raise ConfigurationError(f"partition count must be an integer from 1 to {MAX_PARTITION_COUNT}, got {count!r}")
    return count


def validate_instance_id(instance_id: str, *, for_new_orchestration: bool = False) -> str:
    """Reject ids that cannot be stored or addressed.

    Storage can hold any id (keys are escaped), but ids for *new* orchestrations follow the
    Durable Functions rules so they also work in HTTP routes: no ``/ \\ # ?``, no leading
    ``@`` (reserved for entities).
    """
    if not isinstance(instance_id, str) or not instance_id:
        raise InvalidInstanceIdError("instance id must be a non-empty string")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise InvalidInstanceIdError(
            f"instance id is {len(instance_id)} characters long; the limit is {MAX_INSTANCE_ID_LENGTH}"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in instance_id):
        raise InvalidInstanceIdError(f"instance id {instance_id!r} contains control characters")
    try:
        instance_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInstanceIdError(f"instance id {instance_id!r} is not valid Unicode text") from exc
    if for_new_orchestration:
        bad = sorted(set(instance_id) & _FORBIDDEN_IN_NEW_IDS)
        if bad:
            raise InvalidInstanceIdError(
                f"instance id {instance_id!r} contains {' '.join(bad)}; orchestration ids may not contain / \\ # ?"
            )
        if instance_id.startswith("@"):
            raise InvalidInstanceIdError(
                f"instance id {instance_id!r} starts with '@', which is reserved for entity ids (@name@key)"
            )
    return instance_id


@dataclass(frozen=True)
class TaskHubNames:
    """All resource names of one task hub (as DTAS ``AzureStorageOrchestrationServiceSettings`` derives them)."""

    task_hub: str
    partition_count: int = DEFAULT_PARTITION_COUNT

    def __post_init__(self) -> None:
        validate_task_hub_name(self.task_hub)
        validate_partition_count(self.partition_count)

    @property
    def lower(self) -> str:
        return self.task_hub.lower()

    def control_queue(self, index: int) -> str:
        if not 0 <= index < self.partition_count:
            raise ValueError(f"partition index {index} outside 0..{self.partition_count - 1}")
        return f"{self.lower}-control-{index:02d}"

    @property
    def control_queues(self) -> list[str]:
        return [self.control_queue(i) for i in range(self.partition_count)]

    @property
    def work_item_queue(self) -> str:
        return f"{self.lower}-workitems"

    @property
    def history_table(self) -> str:
        return f"{self.task_hub}History"

    @property
    def instances_table(self) -> str:
        return f"{self.task_hub}Instances"

    @property
    def partitions_table(self) -> str:
        return f"{self.task_hub}Partitions"

    @property
    def poison_table(self) -> str:
        """Our addition to the layout: quarantined messages (see docs/storage-layout.md)."""
        return f"{self.task_hub}Poison"

    @property
    def large_messages_container(self) -> str:
        return f"{self.lower}-largemessages"

    @property
    def app_lease_container(self) -> str:
        return f"{self.lower}-applease"

    @property
    def app_lease_info_blob(self) -> str:
        return f"{self.lower}-appleaseinfo"

    @property
    def leases_container(self) -> str:
        """Only used by the blob partition managers (v1/v2); v3 never creates it."""
        return f"{self.lower}-leases"

    def partition_of(self, instance_id: str) -> int:
        from .partitioning import partition_index

        return partition_index(instance_id, self.partition_count)

    def control_queue_for(self, instance_id: str) -> str:
        return self.control_queue(self.partition_of(instance_id))
