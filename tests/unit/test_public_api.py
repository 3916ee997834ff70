"""The exported names are the public contract: changing them must be deliberate."""

from __future__ import annotations

import durable_azstorage
import durable_azstorage.aio
from durable_azstorage.client import _async_client, _sync_client


def test_root_exports() -> None:
    assert sorted(durable_azstorage.__all__) == sorted(
        [
            "DEFAULT_DEDUPE_STATUSES",
            "CheckpointConflictError",
            "ConfigurationError",
            "DurableAzStorageError",
            "InstanceAlreadyExistsError",
            "InstanceNotFoundError",
            "InstancePage",
            "InstanceQuery",
            "InvalidInstanceIdError",
            "InvalidInstanceStateError",
            "InvalidTaskHubNameError",
            "MessageDecodeError",
            "OrchestrationStatus",
            "PurgeResult",
            "StorageAccount",
            "TaskHubClient",
            "UnknownTypeNameError",
            "__version__",
        ]
    )
    for name in durable_azstorage.__all__:
        assert hasattr(durable_azstorage, name)


def test_aio_exports_and_client_kinds() -> None:
    assert sorted(durable_azstorage.aio.__all__) == ["InstancePage", "InstanceQuery", "PurgeResult", "TaskHubClient"]
    assert durable_azstorage.TaskHubClient is _sync_client.TaskHubClient
    assert durable_azstorage.aio.TaskHubClient is _async_client.TaskHubClient


def test_sync_client_mirrors_async_methods() -> None:
    public = {
        n for n in dir(_async_client.TaskHubClient) if not n.startswith("_") and n not in {"from_connection_string"}
    }
    missing = {n for n in public if not hasattr(_sync_client.TaskHubClient, n)}
    assert missing == set()


def test_old_client_paths_still_work_with_a_deprecation_warning() -> None:
    import warnings

    import durable_azstorage.client as old

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert old.TaskHubClient is _async_client.TaskHubClient
        assert old.SyncTaskHubClient is _sync_client.TaskHubClient
    assert [w.category for w in caught] == [DeprecationWarning, DeprecationWarning]
    assert "durable_azstorage.aio" in str(caught[0].message)
