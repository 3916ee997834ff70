"""A v2 app whose orchestrator runs many episodes: the kept-executor test (test_functions_incremental)."""

from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
ATTEMPTS: dict[str, int] = {}


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    total = 0
    for i in range(context.get_input()):
        total += yield context.call_activity("square", i)
        context.set_custom_status({"done": i + 1})
    fan = yield context.task_all([context.call_activity("square", i) for i in range(8)])
    go = context.wait_for_external_event("Go")
    winner = yield context.task_any([go, context.create_timer(context.current_utc_datetime + timedelta(minutes=10))])
    value = yield context.call_entity(df.EntityId("Counter", context.instance_id), "add", total)
    child = yield context.call_sub_orchestrator("child", 3)
    return [total, sum(fan), winner.result, value, child]


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=3)
    tries = yield context.call_activity_with_retry("flaky", options, context.instance_id)
    return [context.get_input(), tries]


@app.orchestration_trigger(context_name="context")
def eternal(context: df.DurableOrchestrationContext):
    n = context.get_input()
    yield context.call_activity("square", n)
    if n < 2:
        context.continue_as_new(n + 1)
        return None
    raise ValueError(f"stopped at {n}")


@app.activity_trigger(input_name="x")
def square(x: int) -> int:
    return x * x


@app.activity_trigger(input_name="key")
def flaky(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 2:
        raise RuntimeError("first attempt fails")
    return ATTEMPTS[key]


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:
    current = context.get_state(lambda: 0)
    if context.operation_name == "add":
        current += context.get_input()
        context.set_state(current)
    context.set_result(current)
