"""The stores that talk to Azure Storage for one task hub (the formats they write are in ``codec``).

Everything here is async and raises the typed errors of :mod:`durable_azstorage.errors`.
"""

# The hub, wired once: clients and stores shared by the worker and the client.
# The one write path of an episode: outbound messages, history, Instances row (DTAS order).
# One store per table, queue kind and container.
from .blobs import LargePayloadStore
from .checkpoint import Checkpoint, CheckpointResult, commit_checkpoint
from .history_store import HistoryStore
from .instance_store import InstanceStore
from .partition_table import Lease, LeaseConflictError, PartitionTable
from .poison_store import PoisonRecord, PoisonStore
from .queues import TaskHubQueue

# Resource management: create, describe, delete (DTAS GetTaskHubCreatorTask order).
from .task_hub_resources import TaskHubDescription, TaskHubResources
from .task_hub_storage import TaskHubStorage

__all__ = [
    # the hub
    "TaskHubStorage",
    "TaskHubDescription",
    "TaskHubResources",
    # checkpoint
    "Checkpoint",
    "CheckpointResult",
    "commit_checkpoint",
    # stores
    "HistoryStore",
    "InstanceStore",
    "LargePayloadStore",
    "Lease",
    "LeaseConflictError",
    "PartitionTable",
    "PoisonRecord",
    "PoisonStore",
    "TaskHubQueue",
]
