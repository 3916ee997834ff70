"""Durable Functions patterns for azure-functions-durable 2.x (the durabletask-based SDK, Python >= 3.13).

This file uses only ``azure-functions``, ``azure-functions-durable`` 2.x and ``durabletask``:
deploy it to Azure Functions as it is, or run it locally on Azure Storage / Azurite with
``durable-azstorage run examples/functions_v2x_app`` (in a Python 3.13 environment with
``requirements.txt`` and durable_azstorage installed). It shows both styles 2.x accepts:

* the 1.x-compatible style: generator orchestrators taking a ``df.DurableOrchestrationContext``,
  ``context.call_activity("name", input)``, ``context.task_all``/``task_any``, one-argument
  entity functions with a ``df.DurableEntityContext``;
* the durabletask style: ``(ctx: task.OrchestrationContext, input)`` orchestrators,
  ``ctx.call_activity(name, input=...)``, ``task.when_all``/``when_any``, ``task.RetryPolicy``,
  class-based entities (``entities.DurableEntity``), the async ``DurableFunctionsClient``.

Patterns (orchestrator function names):

* function chaining ........... ``hello_sequence`` (durabletask style)
* fan-out / fan-in ............ ``fan_out_fan_in`` (1.x style)
* async HTTP API .............. the starters ``http_start`` / ``http_start_and_wait`` / ``http_start_sync``
  (a plain function with the synchronous client) + ``instance_status``
* monitor ..................... ``monitor_job`` (1.x style, durable timers)
* human interaction ........... ``approval_workflow`` (durabletask style: event "Approval" vs a timer)
* sub-orchestrations .......... ``process_orders`` -> ``process_order``
* eternal orchestration ....... ``counter_loop`` (continue-as-new until a limit)
* retries + compensation ...... ``transfer_funds`` (``task.RetryPolicy``, refund when the credit fails)
* entities .................... ``counter`` (1.x-style function), ``Account`` (class-based),
  ``entity_workflow`` (an orchestration that signals and calls them), ``/api/entities/...``
* slow_sequence ............... a chain of slow steps, for the crash-safety test
"""

import json
import logging
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from durabletask import entities, task

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

Orchestration = Generator[Any, Any, Any]

# ---------------------------------------------------------------------------------------------
# HTTP starters, status and entities (async HTTP API pattern) — the 2.x client over gRPC
# ---------------------------------------------------------------------------------------------


def _json_body(req: func.HttpRequest) -> Any:
    body = req.get_body()
    return json.loads(body) if body else None


def _json(value: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value, default=str), status_code=status, mimetype="application/json")


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableFunctionsClient) -> func.HttpResponse:
    """Start an orchestration; answers 202 with the status/event/terminate URLs."""
    name = req.route_params["functionName"]
    try:
        payload = _json_body(req)
    except ValueError:
        return _json({"error": "the request body must be JSON (the orchestration input)"}, 400)
    instance_id = await client.schedule_new_orchestration(name, input=payload, instance_id=req.params.get("id"))
    logging.info("Started orchestration %s with ID %s", name, instance_id)
    return client.create_check_status_response(req, instance_id)


@app.route(route="orchestrators/{functionName}/wait", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start_and_wait(req: func.HttpRequest, client: df.DurableFunctionsClient) -> func.HttpResponse:
    """Start an orchestration; its output when it finishes within ``timeoutMs``, else the 202 URLs."""
    name = req.route_params["functionName"]
    try:
        payload = _json_body(req)
        timeout_ms = int(req.params.get("timeoutMs", "30000"))
        interval_ms = int(req.params.get("intervalMs", "500"))
    except ValueError:
        return _json({"error": "the body must be JSON; timeoutMs and intervalMs must be integers"}, 400)
    instance_id = await client.schedule_new_orchestration(name, input=payload)
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=timeout_ms, retry_interval_in_milliseconds=interval_ms
    )


@app.route(route="sync/orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
def http_start_sync(req: func.HttpRequest, client: df.SyncDurableFunctionsClient) -> func.HttpResponse:
    """The same starter as a plain function: 2.x hands it the synchronous client."""
    instance_id = client.schedule_new_orchestration(req.route_params["functionName"], input=_json_body(req))
    return client.create_check_status_response(req, instance_id)


@app.route(route="status/{instanceId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def instance_status(req: func.HttpRequest, client: df.DurableFunctionsClient) -> func.HttpResponse:
    """An instance's state through the client (``get_orchestration_state``)."""
    state = await client.get_orchestration_state(req.route_params["instanceId"])
    if state is None:
        return _json({"error": f"no instance {req.route_params['instanceId']!r}"}, 404)
    return _json({
        "instanceId": state.instance_id,
        "name": state.name,
        "runtimeStatus": state.runtime_status.name,
        "input": json.loads(state.serialized_input) if state.serialized_input else None,
        "output": json.loads(state.serialized_output) if state.serialized_output else None,
        "customStatus": json.loads(state.serialized_custom_status) if state.serialized_custom_status else None,
    })


@app.route(route="entities/{name}/{key}/{operation}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal_entity(req: func.HttpRequest, client: df.DurableFunctionsClient) -> func.HttpResponse:
    """Signal an entity operation (one-way); the body is the operation input."""
    entity = entities.EntityInstanceId(req.route_params["name"], req.route_params["key"])
    await client.signal_entity(entity, req.route_params["operation"], input=_json_body(req))
    return _json({"signalled": str(entity)}, 202)


@app.route(route="entities/{name}/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_entity(req: func.HttpRequest, client: df.DurableFunctionsClient) -> func.HttpResponse:
    entity = entities.EntityInstanceId(req.route_params["name"], req.route_params["key"])
    metadata = await client.get_entity(entity, include_state=True)
    if metadata is None:
        return _json({"error": f"no entity {entity}"}, 404)
    return _json({"entity": str(entity), "state": metadata.get_typed_state()})


# ---------------------------------------------------------------------------------------------
# Function chaining (durabletask style)
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: task.OrchestrationContext, cities: Any) -> Orchestration:
    """Call ``say_hello`` once per city, one after the other; input: a list of cities."""
    greetings = []
    for city in cities or ["Tokyo", "Seattle", "London"]:
        greetings.append((yield context.call_activity("say_hello", input=city)))
    return greetings


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


# ---------------------------------------------------------------------------------------------
# Fan-out / fan-in (1.x-compatible style)
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext) -> Orchestration:
    """Process N work items in parallel and sum the results; input: ``{"count": N}``."""
    count = int((context.get_input() or {}).get("count", 10))
    items = yield context.call_activity("get_work_items", count)
    results = yield context.task_all([context.call_activity("process_item", item) for item in items])
    return {"items": len(results), "sum": sum(results)}


@app.activity_trigger(input_name="count")
def get_work_items(count: int) -> list[int]:
    return list(range(1, count + 1))


@app.activity_trigger(input_name="item")
async def process_item(item: int) -> int:
    return item * item


# ---------------------------------------------------------------------------------------------
# Monitor (1.x-compatible style): a durable timer loop with a bounded number of checks
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def monitor_job(context: df.DurableOrchestrationContext) -> Orchestration:
    """Poll a job until it completes or ``maxChecks`` is reached (interval from the input)."""
    job = context.get_input() or {}
    job_id = str(job.get("jobId", "job"))
    interval = timedelta(seconds=float(job.get("pollingIntervalSeconds", 60)))
    max_checks = int(job.get("maxChecks", 10))
    for check in range(1, max_checks + 1):
        state = yield context.call_activity(
            "check_job_status", {"check": check, "readyAfterChecks": job.get("readyAfterChecks", 3)}
        )
        context.set_custom_status({"jobId": job_id, "check": check, "jobStatus": state})
        if state == "Completed":
            return {"jobId": job_id, "status": "Completed", "checks": check}
        yield context.create_timer(context.current_utc_datetime + interval)
    return {"jobId": job_id, "status": "GaveUp", "checks": max_checks}


@app.activity_trigger(input_name="query")
def check_job_status(query: dict[str, Any]) -> str:
    return "Completed" if int(query["check"]) >= int(query["readyAfterChecks"]) else "Running"


# ---------------------------------------------------------------------------------------------
# Human interaction (durabletask style): approval event vs a deadline, with escalation
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def approval_workflow(context: task.OrchestrationContext, request: Any) -> Orchestration:
    """Wait for the ``Approval`` event (``{"approved": bool, "by": str}``) or ``timeoutSeconds``."""
    request = request or {}
    timeout = timedelta(seconds=float(request.get("timeoutSeconds", 72 * 3600)))
    yield context.call_activity("request_approval", input=context.instance_id)
    context.set_custom_status("Waiting for approval")
    approval = context.wait_for_external_event("Approval")
    deadline = context.create_timer(timeout)
    winner = yield task.when_any([approval, deadline])
    if winner == approval:
        decision = approval.get_result() or {}
        outcome = "Approved" if decision.get("approved") else "Rejected"
        context.set_custom_status(outcome)
        return {"outcome": outcome, "by": decision.get("by")}
    escalated_to = yield context.call_activity("escalate", input=request.get("escalateTo", "manager"))
    context.set_custom_status("Escalated")
    return {"outcome": "Escalated", "escalatedTo": escalated_to}


@app.activity_trigger(input_name="instance")
def request_approval(instance: str) -> str:
    logging.info("Approval requested for %s", instance)
    return "requested"


@app.activity_trigger(input_name="manager")
def escalate(manager: str) -> str:
    return manager


# ---------------------------------------------------------------------------------------------
# Sub-orchestrations (durabletask style parent, 1.x-style child)
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def process_orders(context: task.OrchestrationContext, orders: Any) -> Orchestration:
    """One ``process_order`` child per order, in parallel; child ``i`` is ``{parent id}:order:{i}``."""
    children = [
        context.call_sub_orchestrator("process_order", input=order, instance_id=f"{context.instance_id}:order:{i}")
        for i, order in enumerate(orders or [])
    ]
    results = yield task.when_all(children)
    return {"orders": results, "total": sum(result["total"] for result in results)}


@app.orchestration_trigger(context_name="context")
def process_order(context: df.DurableOrchestrationContext) -> Orchestration:
    order = context.get_input()
    total = yield context.call_activity("price_order", order)
    return {"id": order["id"], "total": total, "parent": context.parent_instance_id}


@app.activity_trigger(input_name="order")
def price_order(order: dict[str, Any]) -> float:
    return float(order["quantity"]) * float(order["unitPrice"])


# ---------------------------------------------------------------------------------------------
# Eternal orchestration: continue-as-new with a counter, stopping at a limit
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def counter_loop(context: task.OrchestrationContext, state: Any) -> Orchestration:
    """One tick per generation: work, a durable timer, then ``continue_as_new``; stops at ``limit``."""
    state = state or {}
    count = int(state.get("count", 0)) + 1
    limit = int(state.get("limit", 10))
    yield context.call_activity("record_tick", input=count)
    context.set_custom_status({"count": count, "limit": limit})
    if count >= limit:
        return {"count": count, "limit": limit}
    yield context.create_timer(timedelta(seconds=float(state.get("intervalSeconds", 60))))
    context.continue_as_new({**state, "count": count})
    return None


@app.activity_trigger(input_name="count")
def record_tick(count: int) -> int:
    return count


# ---------------------------------------------------------------------------------------------
# Retries + compensation (durabletask style)
# ---------------------------------------------------------------------------------------------

# Attempts per orchestration instance, kept in this process so that the simulated outage is
# deterministic in a test ("fail the first N attempts"). A real service would not need this.
_CREDIT_ATTEMPTS: dict[str, int] = {}


@app.orchestration_trigger(context_name="context")
def transfer_funds(context: task.OrchestrationContext, transfer: Any) -> Orchestration:
    """Debit, then credit with retries; refund the debit when the credit fails after every retry.

    Input: ``{"amount", "failuresBeforeSuccess", "maxAttempts", "retryIntervalMs", "compensate"}``;
    with ``compensate: false`` the failure is re-raised after the refund (the instance ends Failed).
    """
    transfer = transfer or {}
    amount = transfer.get("amount", 100)
    retry = task.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=int(transfer.get("retryIntervalMs", 5000))),
        max_number_of_attempts=int(transfer.get("maxAttempts", 3)),
    )
    debit = yield context.call_activity("debit_account", input=amount)
    context.set_custom_status({"stage": "credit"})
    try:
        credit = yield context.call_activity(
            "credit_account",
            input={"key": context.instance_id, "amount": amount,
                   "failuresBeforeSuccess": int(transfer.get("failuresBeforeSuccess", 0))},
            retry_policy=retry,
        )
    except task.TaskFailedError as error:
        refund = yield context.call_activity("refund_debit", input=debit)
        context.set_custom_status({"stage": "compensated"})
        if not transfer.get("compensate", True):
            raise  # the instance ends Failed, after the refund
        return {"status": "Compensated", "refund": refund, "error": str(error)[:300]}
    context.set_custom_status({"stage": "done"})
    return {"status": "Transferred", "debit": debit, "credit": credit}


@app.activity_trigger(input_name="amount")
def debit_account(amount: float) -> dict[str, Any]:
    return {"debited": amount}


@app.activity_trigger(input_name="request")
def credit_account(request: dict[str, Any]) -> dict[str, Any]:
    """A flaky credit service: the first ``failuresBeforeSuccess`` attempts per instance fail."""
    key = str(request["key"])
    attempt = _CREDIT_ATTEMPTS.get(key, 0) + 1
    _CREDIT_ATTEMPTS[key] = attempt
    if attempt <= int(request["failuresBeforeSuccess"]):
        raise RuntimeError(f"credit service unavailable (attempt {attempt})")
    return {"credited": request["amount"], "attempt": attempt}


@app.activity_trigger(input_name="debit")
def refund_debit(debit: dict[str, Any]) -> dict[str, Any]:
    return {"refunded": debit["debited"]}


# ---------------------------------------------------------------------------------------------
# Entities: a 1.x-style function entity, a class-based entity, and an orchestration using both
# ---------------------------------------------------------------------------------------------


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    """``add`` (amount), ``reset``, ``get``: the 1.x-compatible entity style."""
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += int(context.get_input() or 0)
    elif operation == "reset":
        value = 0
    context.set_state(value)
    context.set_result(value)


@app.entity_trigger(context_name="context", entity_name="Account")
class Account(entities.DurableEntity):
    """A class-based entity: each public method is an operation."""

    def deposit(self, amount: int) -> int:
        balance = int(self.get_state(int, 0)) + int(amount)
        self.set_state(balance)
        return balance

    def withdraw(self, amount: int) -> int:
        balance = int(self.get_state(int, 0))
        if amount > balance:
            raise ValueError(f"insufficient funds: balance {balance}, asked {amount}")
        self.set_state(balance - int(amount))
        return balance - int(amount)

    def balance(self) -> int:
        return int(self.get_state(int, 0))


@app.orchestration_trigger(context_name="context")
def entity_workflow(context: task.OrchestrationContext, request: Any) -> Orchestration:
    """Signal the counter, call the account twice (the second withdrawal fails), read both."""
    key = str((request or {}).get("key", context.instance_id))
    counter_id = entities.EntityInstanceId("counter", key)
    account_id = entities.EntityInstanceId("Account", key)
    context.signal_entity(counter_id, "add", input=5)
    deposited = yield context.call_entity(account_id, "deposit", input=100)
    withdrawn = yield context.call_entity(account_id, "withdraw", input=30)
    try:
        yield context.call_entity(account_id, "withdraw", input=1000)
        overdraft = "allowed"
    except task.TaskFailedError as error:
        overdraft = f"refused: {error}"[:200]
    count = yield context.call_entity(counter_id, "get")
    return {"deposited": deposited, "withdrawn": withdrawn, "overdraft": overdraft, "counter": count}


# ---------------------------------------------------------------------------------------------
# A chain of slow steps: in flight long enough to kill the host under it (crash-safety test)
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def slow_sequence(context: task.OrchestrationContext, request: Any) -> Orchestration:
    steps = int((request or {}).get("steps", 5))
    delay = float((request or {}).get("delaySeconds", 0.5))
    done = []
    for step in range(steps):
        done.append((yield context.call_activity("slow_step", input={"step": step, "delay": delay})))
        context.set_custom_status({"done": len(done)})
    return done


@app.activity_trigger(input_name="work")
def slow_step(work: dict[str, Any]) -> int:
    time.sleep(float(work["delay"]))  # stands in for real work that takes a while
    return int(work["step"])
