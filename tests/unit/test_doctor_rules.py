"""The pure doctor rules on hand-built snapshots: the edges the Azurite tests cannot time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.operations.doctor_rules import analyse
from durable_azstorage.operations.doctor_scan import summarise_history
from durable_azstorage.operations.findings import DoctorReport, Severity
from durable_azstorage.operations.hub_snapshot import (
    DoctorOptions,
    HistoryFact,
    HubSnapshot,
    InstanceFact,
    PeekedMessage,
    QueueFact,
)
from durable_azstorage.storage.partition_table import Lease

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(hours=1)


def _row(instance_id: str, status: OrchestrationStatus, *, execution: str = "e1", at: datetime = OLD) -> InstanceFact:
    return InstanceFact(instance_id, status, status.name, execution, at, at, None, "etag")


def _codes(snapshot: HubSnapshot) -> dict[str, list[str]]:
    return {f.code: [str(i["id"]) for i in f.items] for f in analyse(snapshot) if f.count}


def test_pending_row_with_its_start_message_visible_is_not_stuck() -> None:
    s = HubSnapshot("hub", NOW, 4)
    s.instances["a"] = _row("a", OrchestrationStatus.Pending)
    s.instances["b"] = _row("b", OrchestrationStatus.Pending)
    s.queues["hub-control-00"] = QueueFact("hub-control-00", True, 1, [
        PeekedMessage("hub-control-00", "m", 1, OLD, "a", "e1", "ExecutionStarted"),
    ])
    assert _codes(s) == {"status.pending-start-missing": ["b"]}


def test_recent_rows_are_given_the_horizon() -> None:
    s = HubSnapshot("hub", NOW, 4)
    s.instances["new"] = _row("new", OrchestrationStatus.Pending, at=NOW - timedelta(minutes=1))
    s.instances["lag"] = _row("lag", OrchestrationStatus.Pending, at=NOW - timedelta(minutes=1))
    s.histories["lag"] = HistoryFact("lag", "e1", OrchestrationStatus.Running, 3, NOW)
    assert _codes(s) == {}
    s.now = NOW + timedelta(hours=1)
    assert _codes(s) == {"status.pending-start-missing": ["new"], "status.row-behind-history": ["lag"]}


def test_finished_history_under_a_live_row_once_nobody_touched_it_for_the_horizon() -> None:
    s = HubSnapshot("hub", NOW, 4)
    s.instances["x"] = _row("x", OrchestrationStatus.Running, at=NOW - timedelta(minutes=1))
    s.histories["x"] = HistoryFact("x", "e1", OrchestrationStatus.Failed, 5, NOW)
    s.instances["unread"] = _row("unread", OrchestrationStatus.Running)
    s.history_unread = {"unread"}
    assert _codes(s) == {}  # a worker may be between its history and its row write
    s.instances["x"] = _row("x", OrchestrationStatus.Running)
    s.instances["y"] = _row("y", OrchestrationStatus.Running, execution="e2")
    s.histories["y"] = HistoryFact("y", "e1", OrchestrationStatus.Completed, 5, NOW)
    s.instances["z"] = _row("z", OrchestrationStatus.Running)
    assert _codes(s) == {
        "status.terminal-history-live-row": ["x"],
        "status.execution-mismatch": ["y"],
        "status.live-row-without-history": ["z"],
    }


def test_leases_free_stale_contested_and_from_the_future() -> None:
    def lease(name: str, owner: str | None, expires: datetime | None, next_owner: str | None = None) -> Lease:
        return Lease(name, owner, next_owner, None, None, expires, False, "etag")

    s = HubSnapshot("hub", NOW, 4)
    s.leases = [
        lease("hub-control-00", None, None),
        lease("hub-control-01", "dead", NOW - timedelta(minutes=5)),
        lease("hub-control-02", "a", NOW + timedelta(seconds=20), next_owner="b"),
        lease("hub-control-03", "fast-clock", NOW + timedelta(days=1)),
    ]
    findings = {f.code: f for f in analyse(s) if f.count}
    assert [i["id"] for i in findings["partitions.no-live-owner"].items] == ["hub-control-01"]
    assert findings["partitions.unclaimed"].severity is Severity.INFO
    assert [i["id"] for i in findings["partitions.contested"].items] == ["hub-control-02"]
    assert [i["id"] for i in findings["partitions.lease-in-future"].items] == ["hub-control-03"]


def test_entity_locks_and_orphaned_blobs() -> None:
    s = HubSnapshot("hub", NOW, 4)
    done = _row("done", OrchestrationStatus.Completed)
    s.instances = {"done": done, "@c@1": InstanceFact("@c@1", OrchestrationStatus.Running, "Running", "e", OLD, OLD,
                                                      None, "t", locked_by="done"),
                   "@c@2": InstanceFact("@c@2", OrchestrationStatus.Running, "Running", "e", OLD, OLD, None, "t",
                                        locked_by="gone")}
    from durable_azstorage.operations.hub_snapshot import BlobFact

    s.blobs = [BlobFact("done/message-1-TaskScheduled.json.gz", OLD, "e"), BlobFact("a^0b/history-x.json.gz", OLD, "e"),
               BlobFact("poison/q/m.json.gz", OLD, "e")]
    s.history_ids = {"a/b"}
    codes = _codes(s)
    assert codes["entities.lock-held-by-finished"] == ["@c@1", "@c@2"]
    assert codes["blobs.orphaned"] == ["poison/q/m.json.gz"]


def test_history_summary_follows_the_sentinel_generation() -> None:
    rows = [
        {"RowKey": "0000000000000000", "EventType": "OrchestratorStarted", "ExecutionId": "new"},
        {"RowKey": "0000000000000001", "EventType": "ExecutionStarted", "ExecutionId": "new"},
        {"RowKey": "0000000000000002", "EventType": "ExecutionCompleted", "ExecutionId": "old",
         "OrchestrationStatus": "Completed"},
        {"RowKey": "sentinel", "ExecutionId": "new"},
    ]
    fact = summarise_history("i", rows)
    assert (fact.execution_id, fact.status, fact.event_count) == ("new", OrchestrationStatus.Running, 2)
    rows.append({"RowKey": "0000000000000003", "EventType": "ExecutionCompleted", "ExecutionId": "new",
                 "OrchestrationStatus": "Failed"})
    assert summarise_history("i", rows).status is OrchestrationStatus.Failed


def test_report_is_json_ready_and_healthy_ignores_info() -> None:
    s = HubSnapshot("hub", NOW, 4)
    s.instances["idle"] = _row("idle", OrchestrationStatus.Running, at=NOW - timedelta(days=90))
    s.histories["idle"] = HistoryFact("idle", "e1", OrchestrationStatus.Running, 3, OLD)
    report = DoctorReport("hub", NOW, 4, findings=analyse(s, DoctorOptions()))
    data = report.to_dict()
    assert data["healthy"] is True
    assert [f["code"] for f in data["findings"]] == ["status.idle-running"]
    assert data["findings"][0]["examples"] == ["idle"]
