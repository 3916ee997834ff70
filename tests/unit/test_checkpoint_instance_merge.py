"""When the storage checkpoint may skip the Instances merge (issue 16): only a recent, touch-only one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from durable_azstorage.storage.checkpoint import INSTANCE_ROW_REFRESH, Checkpoint, _merge_changes_nothing_visible

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
TOUCH = {"PartitionKey": "i", "RowKey": "", "ExecutionId": "e", "LastUpdatedTime": NOW, "TaskHubName": "h"}


def _checkpoint(written_at: datetime | None, custom_status: str | None = "null") -> Checkpoint:
    return Checkpoint(
        instance_id="i",
        execution_id="e",
        new_events=[],
        event_count=0,
        etag="x",
        now=NOW,
        instance_row_written_at=written_at,
        instance_row_custom_status=custom_status,
    )


def test_a_recent_touch_only_merge_is_skipped() -> None:
    recent = NOW - timedelta(seconds=1)
    assert _merge_changes_nothing_visible({**TOUCH, "CustomStatus": "null"}, _checkpoint(recent))
    assert _merge_changes_nothing_visible(dict(TOUCH), _checkpoint(recent))  # custom status kept


def test_visible_changes_are_always_written() -> None:
    recent = NOW - timedelta(seconds=1)
    for extra in ({"RuntimeStatus": "Completed"}, {"Output": "1"}, {"CompletedTime": NOW}, {"Input": "2"}):
        assert not _merge_changes_nothing_visible({**TOUCH, **extra}, _checkpoint(recent))
    assert not _merge_changes_nothing_visible({**TOUCH, "CustomStatus": '"step 2"'}, _checkpoint(recent))


def test_unknown_or_old_writes_are_refreshed() -> None:
    assert not _merge_changes_nothing_visible(dict(TOUCH), _checkpoint(None))
    assert not _merge_changes_nothing_visible(dict(TOUCH), _checkpoint(NOW - INSTANCE_ROW_REFRESH))
