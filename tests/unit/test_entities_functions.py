"""azure-functions-durable 1.x entities through FunctionsEntityRuntime (no storage needed)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import azure.durable_functions as df
import pytest

from durable_azstorage.codec import entity_codec
from durable_azstorage.errors import FunctionNotRegisteredError
from durable_azstorage.model import ExecutionStartedEvent
from durable_azstorage.runtimes.entities import EntityBatchRequest, EntityOperation
from durable_azstorage.runtimes.entities_orchestration import EntityMessageEncoder
from durable_azstorage.runtimes.functions_entities import FunctionsEntityRuntime, entity_send_event


def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
        context.set_state(value)
    elif operation == "add_then_fail":
        context.set_state(value + context.get_input())
        raise ValueError("bad op")
    elif operation == "reset":
        context.set_state(0)
    elif operation == "get":
        context.set_result(value)
    elif operation == "delete":
        context.destruct_on_exit()


class Cart:
    """Class-based dispatch: methods are operations, attributes the state."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    def count(self) -> int:
        return len(self.items)


def _ops(*pairs: tuple[str, Any]) -> list[EntityOperation]:
    return [EntityOperation(operation=name, input=None if v is None else json.dumps(v)) for name, v in pairs]


def test_function_entity_batch_with_rollback() -> None:
    runtime = FunctionsEntityRuntime({"Counter": counter, "handle": df.Entity.create(counter)})
    request = EntityBatchRequest(
        instance_id="@counter@k",
        entity_state="10",
        operations=_ops(("add", 5), ("add_then_fail", 100), ("get", None), ("add", 1)),
    )
    result = runtime.run_batch_sync(request)
    outcomes = [(o.result, o.failure_details.error_message if o.failure_details else None) for o in result.results]
    # The failed operation's state change is discarded; "get" does not leak the previous result.
    assert outcomes == [("null", None), (None, "bad op"), ("15", None), ("null", None)]
    assert result.entity_state == "16"
    deleted = runtime.run_batch_sync(
        EntityBatchRequest(instance_id="@handle@k", entity_state="3", operations=_ops(("delete", None)))
    )
    assert deleted.entity_state is None


def test_class_based_entity_and_unknown_names() -> None:
    runtime = FunctionsEntityRuntime({"cart": Cart})
    result = runtime.run_batch_sync(
        EntityBatchRequest(
            instance_id="@cart@c",
            entity_state=None,
            operations=_ops(("add", "a"), ("add", "b"), ("count", None), ("nope", None)),
        )
    )
    assert [o.result for o in result.results[:3]] == ["1", "2", "2"]
    assert result.results[3].is_failure
    assert json.loads(result.entity_state or "") == {"items": ["a", "b"]}
    with pytest.raises(FunctionNotRegisteredError):  # retried by the worker, as Core does
        runtime.run_batch_sync(
            EntityBatchRequest(instance_id="@other@k", entity_state=None, operations=_ops(("x", None)))
        )


def test_orchestrator_entity_actions_become_eventsent_op() -> None:
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    encoder = EntityMessageEncoder("orch", "exec", [], [ExecutionStartedEvent(timestamp=start)])
    call = {"actionType": 7, "instanceId": "@counter@k1", "operation": "add", "input": "5"}
    event = entity_send_event(call, 3, encoder, now=start)
    assert (event.id, event.instance_id, event.name) == (3, "@counter@k1", "op")
    request = entity_codec.decode_request(event.data or "")
    assert (request.operation, request.input, request.is_signal, request.parent_instance_id) == (
        "add",
        "5",
        False,
        "orch",
    )
    again = entity_send_event(
        call, 3, EntityMessageEncoder("orch", "exec", [], [ExecutionStartedEvent(timestamp=start)]), now=start
    )
    assert again == event  # same request id and labels on a re-run
    signal = entity_send_event({**call, "actionType": 9}, 4, encoder, now=start)
    assert entity_codec.decode_request(signal.data or "").is_signal
    with pytest.raises(ValueError):
        entity_send_event({"actionType": 0}, 5, encoder, now=start)
