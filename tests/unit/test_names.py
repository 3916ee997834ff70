"""Task hub and resource names (DTAS ``AzureStorageOrchestrationServiceSettings``, docs/storage-layout.md)."""

from __future__ import annotations

import pytest

from durable_azstorage.codec.names import (
    TaskHubNames,
    suggest_task_hub_name,
    validate_instance_id,
    validate_partition_count,
    validate_task_hub_name,
)
from durable_azstorage.errors import ConfigurationError, InvalidInstanceIdError, InvalidTaskHubNameError


def test_resource_names_for_myhub() -> None:
    names = TaskHubNames("MyHub", 4)
    assert names.control_queues == [f"myhub-control-0{i}" for i in range(4)]
    assert names.work_item_queue == "myhub-workitems"
    assert (names.history_table, names.instances_table, names.partitions_table) == (
        "MyHubHistory",
        "MyHubInstances",
        "MyHubPartitions",
    )
    assert names.large_messages_container == "myhub-largemessages"
    assert names.app_lease_container == "myhub-applease"
    assert names.app_lease_info_blob == "myhub-appleaseinfo"
    assert names.leases_container == "myhub-leases"


def test_sixteen_partitions_use_two_digits() -> None:
    assert TaskHubNames("MyHub", 16).control_queue(15) == "myhub-control-15"


@pytest.mark.parametrize("name", ["abc", "MyHub", "A" + "b" * 49, "hub123"])
def test_valid_hub_names(name: str) -> None:
    assert validate_task_hub_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("ab", "shorter than 3"),
        ("1hub", "start with a letter"),
        ("my-hub", "'-'"),
        ("my_hub", "'_'"),
        ("a" * 51, "51 characters"),
        ("hübhub", "'ü'"),
    ],
)
def test_invalid_hub_names_explain_and_suggest(name: str, fragment: str) -> None:
    with pytest.raises(InvalidTaskHubNameError) as info:
        validate_task_hub_name(name)
    message = str(info.value)
    assert fragment in message
    assert "Try " in message
    validate_task_hub_name(info.value.suggestion)  # the suggestion is itself valid


@pytest.mark.parametrize(
    ("raw", "suggested"),
    [("my-hub", "myhub"), ("1hub", "t1hub"), ("a", "aHub"), ("---", "DefaultTaskHub"), ("x" * 60, "x" * 45)],
)
def test_suggestions_follow_durable_functions(raw: str, suggested: str) -> None:
    assert suggest_task_hub_name(raw) == suggested


@pytest.mark.parametrize("count", [0, 17, -1, True])
def test_partition_count_range(count: int) -> None:
    with pytest.raises(ConfigurationError):
        validate_partition_count(count)


def test_instance_id_rules() -> None:
    assert validate_instance_id("a/b") == "a/b"  # storable: keys are escaped
    for bad in ("", "x" * 257, "a\tb"):
        with pytest.raises(InvalidInstanceIdError):
            validate_instance_id(bad)
    for bad in ("a/b", "a#b", "@counter@k", "q?"):
        with pytest.raises(InvalidInstanceIdError):
            validate_instance_id(bad, for_new_orchestration=True)
