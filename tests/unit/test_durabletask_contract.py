"""Pins the durabletask SDK version and the private executor API the adapter relies on.

If one of these fails after an SDK upgrade, re-read ``durabletask/worker.py`` before
changing the pin: the adapter calls private classes whose behaviour is pinned here.
"""

from __future__ import annotations

import inspect
import logging
from datetime import datetime, timezone
from importlib.metadata import version

from durabletask import task, worker
from durabletask.internal import helpers
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.serialization import JsonDataConverter

from durable_azstorage.model import EventType
from durable_azstorage.runtimes import durabletask as adapter

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_sdk_version_is_pinned() -> None:
    assert version("durabletask").startswith(adapter.SUPPORTED_SDK_VERSION + ".")


def test_private_api_signatures() -> None:
    params = inspect.signature(worker._OrchestrationExecutor.__init__).parameters
    assert list(params)[:4] == ["self", "registry", "logger", "data_converter"]
    assert "maximum_timer_interval" in params
    assert list(inspect.signature(worker._OrchestrationExecutor.execute).parameters) == [
        "self", "instance_id", "old_events", "new_events"]
    assert list(inspect.signature(worker._ActivityExecutor.execute).parameters) == [
        "self", "orchestration_id", "name", "task_id", "encoded_input"]
    for name in ("add_named_orchestrator", "add_named_activity"):
        assert callable(getattr(worker._Registry(), name))
    assert hasattr(worker.ExecutionResults, "__init__")
    assert callable(helpers.new_failure_details)
    assert task.ActivityContext("i", 1).task_id == 1


def test_history_oneof_field_names_cover_model() -> None:
    fields = {f.name for f in pb.HistoryEvent.DESCRIPTOR.oneofs_by_name["eventType"].fields}
    expected = {"executionStarted", "executionCompleted", "executionTerminated", "taskScheduled", "taskCompleted",
                "taskFailed", "subOrchestrationInstanceCreated", "subOrchestrationInstanceCompleted",
                "subOrchestrationInstanceFailed", "timerCreated", "timerFired", "orchestratorStarted",
                "orchestratorCompleted", "eventSent", "eventRaised", "genericEvent", "executionSuspended",
                "executionResumed"}
    assert expected <= fields
    actions = {f.name for f in pb.OrchestratorAction.DESCRIPTOR.oneofs_by_name["orchestratorActionType"].fields}
    assert {"scheduleTask", "createTimer", "createSubOrchestration", "sendEvent", "completeOrchestration"} <= actions


def test_status_values_match_dtfx() -> None:
    assert pb.ORCHESTRATION_STATUS_COMPLETED == 1 and pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW == 2
    assert pb.ORCHESTRATION_STATUS_FAILED == 3 and pb.ORCHESTRATION_STATUS_TERMINATED == 5
    assert int(EventType.TimerFired) == 11


def test_executor_behaviour_we_rely_on() -> None:
    """Ids from 1; one createTimer with the final fireAt when maximum_timer_interval=None."""

    def orch(ctx: task.OrchestrationContext, _: object) -> object:
        yield ctx.create_timer(T0.replace(year=2025))
        return "x"

    reg = worker._Registry()
    reg.add_named_orchestrator("orch", orch)
    ex = worker._OrchestrationExecutor(reg, logging.getLogger("t"), JsonDataConverter(), maximum_timer_interval=None)
    new = [helpers.new_orchestrator_started_event(T0), helpers.new_execution_started_event("orch", "i")]
    res = ex.execute("i", [], new)
    (action,) = res.actions
    assert action.id == 1 and action.HasField("createTimer")
    assert action.createTimer.fireAt.ToDatetime(tzinfo=timezone.utc) == T0.replace(year=2025)
    assert res.encoded_custom_status is None
