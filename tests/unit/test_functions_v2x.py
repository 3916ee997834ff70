"""The 2.x (durabletask-based) Functions contract: base64 protobuf through the trigger handle, plain JSON activities.

The real SDK needs Python 3.13 and runs in tests/e2e/test_functions_v2x_app.py; here stand-in
handles check the conversions on both sides of the trigger call.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb
from google.protobuf import wrappers_pb2

from durable_azstorage.functions._runtime_v2x import (
    FunctionsV2EntityRuntime,
    FunctionsV2OrchestrationRuntime,
    TriggerHandle,
)
from durable_azstorage.functions._sdk_v2x import binding_overrides, sdk_mismatch_hint
from durable_azstorage.model import ExecutionStartedEvent, OrchestrationInstance, OrchestrationStatus
from durable_azstorage.model.history import OrchestratorStartedEvent
from durable_azstorage.runtimes.actions import CompleteOrchestration, ScheduleTask
from durable_azstorage.runtimes.base import EpisodeRequest
from durable_azstorage.runtimes.entities import EntityBatchRequest, EntityOperation
from durable_azstorage.runtimes.functions import ActivityFunction, FunctionsActivityRuntime


def _episode(name: str = "hello") -> EpisodeRequest:
    started = ExecutionStartedEvent(
        event_id=-1, name=name, input='["Lima"]',
        orchestration_instance=OrchestrationInstance(instance_id="i1", execution_id="e1"),
    )
    return EpisodeRequest(instance_id="i1", execution_id="e1", past_events=(),
                          new_events=(OrchestratorStartedEvent(), started))


class _Seen:
    request: Any = None


def _orchestrator_handle(seen: _Seen) -> Any:
    async def handle(_durable_input: Any, context: Any = None) -> str:  # the SDK's renamed trigger parameter
        request = pb.OrchestratorRequest()
        request.ParseFromString(base64.b64decode(_durable_input.body))
        seen.request = request
        action = pb.OrchestratorAction(id=0, scheduleTask=pb.ScheduleTaskAction(
            name="say_hello", input=wrappers_pb2.StringValue(value='"Lima"')))
        response = pb.OrchestratorResponse(instanceId=request.instanceId, actions=[action],
                                           customStatus=wrappers_pb2.StringValue(value='{"step": 1}'))
        return base64.b64encode(response.SerializeToString()).decode()

    return handle


async def test_an_episode_goes_in_as_an_orchestrator_request_and_comes_back_as_actions() -> None:
    seen = _Seen()
    runtime = FunctionsV2OrchestrationRuntime({"Hello": TriggerHandle(_orchestrator_handle(seen), "_durable_input")})
    result = await runtime.run_episode(_episode())
    assert seen.request.instanceId == "i1" and seen.request.executionId.value == "e1"
    kinds = [e.WhichOneof("eventType") for e in seen.request.newEvents]
    assert kinds == ["orchestratorStarted", "executionStarted"]
    assert seen.request.newEvents[1].executionStarted.name == "hello"
    assert seen.request.newEvents[1].executionStarted.input.value == '["Lima"]'
    assert result.actions == (ScheduleTask(id=0, name="say_hello", input='"Lima"'),)
    assert result.custom_status == '{"step": 1}'


async def test_an_unknown_orchestrator_fails_the_instance_naming_the_registered_ones() -> None:
    runtime = FunctionsV2OrchestrationRuntime({"other": TriggerHandle(_orchestrator_handle(_Seen()), "c")})
    (action,) = (await runtime.run_episode(_episode("missing"))).actions
    assert isinstance(action, CompleteOrchestration) and action.status == OrchestrationStatus.Failed
    assert action.failure_details is not None and "registered: other" in action.failure_details.error_message


async def test_a_handle_that_answers_garbage_fails_the_instance_not_the_worker() -> None:
    def broken(c: Any) -> str:
        return "not base64 protobuf!"

    (action,) = (await FunctionsV2OrchestrationRuntime({"hello": TriggerHandle(broken, "c")})
                 .run_episode(_episode())).actions
    assert isinstance(action, CompleteOrchestration) and action.status == OrchestrationStatus.Failed


async def test_an_entity_batch_goes_in_as_protobuf_and_results_come_back() -> None:
    async def handle(context: Any) -> str:
        request = pb.EntityBatchRequest()
        request.ParseFromString(base64.b64decode(context.body))
        assert request.instanceId == "@counter@k" and request.entityState.value == "2"
        results = [pb.OperationResult(success=pb.OperationResultSuccess(result=wrappers_pb2.StringValue(value="3"))),
                   pb.OperationResult(failure=pb.OperationResultFailure(
                       failureDetails=pb.TaskFailureDetails(errorType="ValueError", errorMessage="no")))]
        response = pb.EntityBatchResult(results=results, entityState=wrappers_pb2.StringValue(value="3"))
        return base64.b64encode(response.SerializeToString()).decode()

    runtime = FunctionsV2EntityRuntime({"Counter": TriggerHandle(handle, "context")})
    batch = EntityBatchRequest(instance_id="@counter@k", entity_state="2", operations=(
        EntityOperation(operation="add", id="r1", input="1"), EntityOperation(operation="bad", id="r2", input=None)))
    result = await runtime.run_batch(batch)
    assert result.entity_state == "3"
    assert result.results[0].result == "3"
    assert result.results[1].failure_details is not None and result.results[1].failure_details.error_message == "no"


async def test_an_unknown_entity_fails_each_operation_and_keeps_the_state() -> None:
    batch = EntityBatchRequest(instance_id="@nope@k", entity_state="7",
                               operations=(EntityOperation(operation="add", id="r1", input="1"),))
    result = await FunctionsV2EntityRuntime({}).run_batch(batch)
    assert result.entity_state == "7" and result.results[0].failure_details is not None


async def test_2x_activities_get_the_json_itself_not_the_1x_one_item_array() -> None:
    def echo(value: Any) -> Any:
        return {"got": value}

    activities = {"echo": ActivityFunction(echo, "value")}
    v2 = await FunctionsActivityRuntime(activities, legacy_input=False).run_activity(
        "echo", '["only"]', instance_id="i", task_id=0)
    v1 = await FunctionsActivityRuntime(activities).run_activity("echo", '["\\"only\\""]', instance_id="i", task_id=0)
    assert v2.result == '{"got": ["only"]}'
    assert v1.result == '{"got": "only"}'


def test_rpc_base_url_is_scheme_host_and_port_only() -> None:
    """The 2.x SDK hands rpcBaseUrl to grpc.aio: a path or a trailing slash breaks it."""

    class Endpoint:
        url = "http://127.0.0.1:40123"

    overrides = binding_overrides(Endpoint(), "http://h:1/runtime/webhooks/durabletask")  # type: ignore[arg-type]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", overrides["rpcBaseUrl"])
    assert overrides["httpBaseUrl"] == "http://h:1/runtime/webhooks/durabletask"
    assert binding_overrides(None, "x") == {}  # 1.x apps keep the 1.x binding


def test_a_2x_app_under_the_1x_sdk_gets_a_hint_that_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("azure-functions\nazure-functions-durable==2.0.0rc3\n")
    hint = sdk_mismatch_hint(tmp_path, AttributeError("x"))
    assert "2.x needs Python >= 3.13" in hint and "requirements.txt" in hint
    (tmp_path / "requirements.txt").write_text("azure-functions-durable>=1.2,<2\n")
    assert sdk_mismatch_hint(tmp_path, AttributeError("x")) == ""
    assert "2.x" in sdk_mismatch_hint(tmp_path, AttributeError("no attribute 'DurableFunctionsClient'"))
