"""The benchmark's user code as an azure-functions-durable 1.x app (Python v2 programming model).

Same orchestrator, activity and entity names and the same work as ``benchmarks/app.py``, so the
``durable_azstorage-functions`` column runs the suite's workloads through ``durable-azstorage
run``'s host (the Functions path: context JSON in, the SDK's action list out) beside the
durabletask path.
"""

from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
CITIES = ("Tokyo", "Seattle", "London", "Cairo", "Lima")


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def square(value: int) -> int:
    return value * value


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    out = []
    for city in CITIES:
        out.append((yield context.call_activity("hello", city)))
    return out


@app.orchestration_trigger(context_name="context")
def fanout(context: df.DurableOrchestrationContext):
    values = yield context.task_all([context.call_activity("square", i) for i in range(context.get_input())])
    return sum(values)


@app.orchestration_trigger(context_name="context")
def long_sequence(context: df.DurableOrchestrationContext):
    total = 0
    for i in range(context.get_input()):
        total += yield context.call_activity("square", i)
    return total


@app.orchestration_trigger(context_name="context")
def wait_events(context: df.DurableOrchestrationContext):
    total = 0
    for _ in range(context.get_input()):
        total += yield context.wait_for_external_event("item")
    return total


@app.orchestration_trigger(context_name="context")
def timer(context: df.DurableOrchestrationContext):
    seconds = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    return seconds


@app.orchestration_trigger(context_name="context")
def single_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("hello", context.get_input()))


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
        context.set_state(value)
    context.set_result(value)
