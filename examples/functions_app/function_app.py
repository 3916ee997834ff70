"""Durable Functions patterns in one Azure Functions Python (v2 programming model) app.

(No ``from __future__ import annotations`` here: the Functions Python worker checks binding
parameter annotations as real types.)

This file uses only ``azure-functions`` and ``azure-functions-durable``: deploy it to Azure
Functions as it is, or run it locally on Azure Storage / Azurite with
``durable-azstorage run examples/functions_app``. Start any orchestrator with
``POST /api/orchestrators/{functionName}`` (the JSON body is its input); timer and retry
intervals come from that input, so the same code runs in seconds in tests and with realistic
defaults (hours, minutes) in production.

Patterns (orchestrator function names):

* function chaining ........... ``hello_sequence``
* fan-out / fan-in ............ ``fan_out_fan_in``
* async HTTP API .............. the starters ``http_start`` / ``http_start_and_wait`` + ``instance_status``
* monitor ..................... ``monitor_job``
* human interaction ........... ``approval_workflow`` (event "Approval" vs a timer, escalation)
* sub-orchestrations .......... ``process_orders`` -> ``process_order``
* eternal orchestration ....... ``counter_loop`` (continue-as-new until a limit)
* error handling .............. ``transfer_funds`` (retry, then compensation)
* custom status ............... ``custom_status_workflow`` (and most of the others)
"""

import json
import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

Orchestration = Generator[Any, Any, Any]

# ---------------------------------------------------------------------------------------------
# HTTP starters and status (async HTTP API pattern)
# ---------------------------------------------------------------------------------------------


def _json_body(req: func.HttpRequest) -> Any:
    """The request body as JSON, or None when empty (raises ValueError when it is not JSON)."""
    body = req.get_body()
    return json.loads(body) if body else None


def _error(status: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"error": message}), status_code=status, mimetype="application/json")


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start an orchestration; answers 202 with the status/event/terminate URLs."""
    function_name = req.route_params["functionName"]
    try:
        payload = _json_body(req)
    except ValueError:
        return _error(400, "the request body must be JSON (the orchestration input)")
    instance_id = await client.start_new(function_name, None, payload)
    logging.info("Started orchestration %s with ID %s", function_name, instance_id)
    return client.create_check_status_response(req, instance_id)


@app.route(route="orchestrators/{functionName}/wait", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start an orchestration and answer with its output if it finishes within ``timeoutMs``.

    Otherwise the answer is the same 202 + status URLs as ``http_start``.
    """
    function_name = req.route_params["functionName"]
    try:
        payload = _json_body(req)
        timeout_ms = int(req.params.get("timeoutMs", "30000"))
        interval_ms = int(req.params.get("intervalMs", "500"))
    except ValueError:
        return _error(400, "the body must be JSON; timeoutMs and intervalMs must be integers")
    instance_id = await client.start_new(function_name, None, payload)
    return await client.wait_for_completion_or_create_check_status_response(req, instance_id, timeout_ms, interval_ms)


@app.route(route="status/{instanceId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def instance_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """An instance's status through the client binding (``client.get_status``)."""
    status = await client.get_status(req.route_params["instanceId"], show_input=True)
    if not status:
        return _error(404, f"no instance {req.route_params['instanceId']!r}")
    return func.HttpResponse(json.dumps(status.to_json(), default=str), mimetype="application/json")


# ---------------------------------------------------------------------------------------------
# Function chaining (E1)
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext) -> Orchestration:
    """Call ``say_hello`` once per city, one after the other; input: a list of cities."""
    cities = context.get_input() or ["Tokyo", "Seattle", "London"]
    greetings = []
    for city in cities:
        greetings.append((yield context.call_activity(say_hello, city)))  # v2: the function object
    return greetings


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


# ---------------------------------------------------------------------------------------------
# Fan-out / fan-in (E2)
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
def process_item(item: int) -> int:
    return item * item


# ---------------------------------------------------------------------------------------------
# Monitor (E3): a durable timer loop with a bounded number of checks
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def monitor_job(context: df.DurableOrchestrationContext) -> Orchestration:
    """Poll a job's status until it completes or ``maxChecks`` is reached.

    Input: ``{"jobId": str, "pollingIntervalSeconds": float, "maxChecks": int,
    "readyAfterChecks": int}`` (the last one makes the simulated job deterministic).
    """
    job = context.get_input() or {}
    job_id = str(job.get("jobId", "job"))
    interval = timedelta(seconds=float(job.get("pollingIntervalSeconds", 60)))
    max_checks = int(job.get("maxChecks", 10))
    for check in range(1, max_checks + 1):
        state = yield context.call_activity(
            "check_job_status", {"jobId": job_id, "check": check, "readyAfterChecks": job.get("readyAfterChecks", 3)}
        )
        context.set_custom_status({"jobId": job_id, "check": check, "jobStatus": state})
        if state == "Completed":
            yield context.call_activity("send_alert", f"job {job_id} completed after {check} checks")
            return {"jobId": job_id, "status": "Completed", "checks": check}
        yield context.create_timer(context.current_utc_datetime + interval)
    return {"jobId": job_id, "status": "GaveUp", "checks": max_checks}


@app.activity_trigger(input_name="query")
def check_job_status(query: dict[str, Any]) -> str:
    """A stand-in for an external status API: the job is done from check ``readyAfterChecks`` on."""
    return "Completed" if int(query["check"]) >= int(query["readyAfterChecks"]) else "Running"


@app.activity_trigger(input_name="message")
def send_alert(message: str) -> str:
    logging.info("ALERT: %s", message)
    return message


# ---------------------------------------------------------------------------------------------
# Human interaction (E4): approval event vs a deadline, with escalation
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def approval_workflow(context: df.DurableOrchestrationContext) -> Orchestration:
    """Ask for approval and wait for the ``Approval`` event or ``timeoutSeconds`` (default 72 h).

    Raise the event with ``{"approved": bool, "by": str}`` (e.g. through ``sendEventPostUri``);
    when the deadline passes first, the request is escalated.
    """
    request = context.get_input() or {}
    timeout = timedelta(seconds=float(request.get("timeoutSeconds", 72 * 3600)))
    yield context.call_activity("request_approval", {"instanceId": context.instance_id, "request": request})
    context.set_custom_status("Waiting for approval")

    approval = context.wait_for_external_event("Approval")
    deadline = context.create_timer(context.current_utc_datetime + timeout)
    winner = yield context.task_any([approval, deadline])
    if winner == approval:
        deadline.cancel()
        decision = approval.result or {}
        outcome = "Approved" if decision.get("approved") else "Rejected"
        context.set_custom_status(outcome)
        return {"outcome": outcome, "by": decision.get("by")}
    escalated_to = yield context.call_activity("escalate", {"instanceId": context.instance_id, "request": request})
    context.set_custom_status("Escalated")
    return {"outcome": "Escalated", "escalatedTo": escalated_to}


@app.activity_trigger(input_name="ask")
def request_approval(ask: dict[str, Any]) -> str:
    logging.info("Approval requested for %s", ask["instanceId"])
    return "requested"


@app.activity_trigger(input_name="ask")
def escalate(ask: dict[str, Any]) -> str:
    manager = str((ask.get("request") or {}).get("escalateTo", "manager"))
    logging.info("Approval for %s escalated to %s", ask["instanceId"], manager)
    return manager


# ---------------------------------------------------------------------------------------------
# Sub-orchestrations
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def process_orders(context: df.DurableOrchestrationContext) -> Orchestration:
    """Run ``process_order`` as a sub-orchestration per order, in parallel, with stable child ids.

    Input: a list of ``{"id": str, "quantity": int, "unitPrice": number}``; child ``i`` has the
    instance id ``{parent id}:order:{i}``.
    """
    orders = context.get_input() or []
    children = [
        context.call_sub_orchestrator("process_order", order, f"{context.instance_id}:order:{i}")
        for i, order in enumerate(orders)
    ]
    results = yield context.task_all(children)
    return {"orders": results, "total": sum(result["total"] for result in results)}


@app.orchestration_trigger(context_name="context")
def process_order(context: df.DurableOrchestrationContext) -> Orchestration:
    order = context.get_input()
    total = yield context.call_activity("price_order", order)
    shipment = yield context.call_activity("ship_order", order)
    return {"id": order["id"], "total": total, "shipment": shipment, "parent": context.parent_instance_id}


@app.activity_trigger(input_name="order")
def price_order(order: dict[str, Any]) -> float:
    return float(order["quantity"]) * float(order["unitPrice"])


@app.activity_trigger(input_name="order")
def ship_order(order: dict[str, Any]) -> str:
    return f"shipment-{order['id']}"


# ---------------------------------------------------------------------------------------------
# Eternal orchestration: continue-as-new with a counter, stopping at a limit
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def counter_loop(context: df.DurableOrchestrationContext) -> Orchestration:
    """One tick per generation; input ``{"count": int, "limit": int, "intervalSeconds": float}``.

    Each generation does its work, sleeps on a durable timer and restarts itself with
    ``continue_as_new`` (so the history never grows); it completes when ``count`` reaches ``limit``.
    """
    state = context.get_input() or {}
    count = int(state.get("count", 0)) + 1
    limit = int(state.get("limit", 10))
    yield context.call_activity("record_tick", count)
    context.set_custom_status({"count": count, "limit": limit})
    if count >= limit:
        return {"count": count, "limit": limit}
    interval = timedelta(seconds=float(state.get("intervalSeconds", 60)))
    yield context.create_timer(context.current_utc_datetime + interval)
    context.continue_as_new({**state, "count": count})
    return None


@app.activity_trigger(input_name="count")
def record_tick(count: int) -> int:
    logging.info("tick %d", count)
    return count


# ---------------------------------------------------------------------------------------------
# Error handling: call_activity_with_retry, then compensation when a step fails for good
# ---------------------------------------------------------------------------------------------

# Attempts per orchestration instance, kept in this process so that the simulated outage is
# deterministic in a test ("fail the first N attempts"). A real service would not need this.
_CREDIT_ATTEMPTS: dict[str, int] = {}


@app.orchestration_trigger(context_name="context")
def transfer_funds(context: df.DurableOrchestrationContext) -> Orchestration:
    """Debit, then credit with retries; refund the debit when the credit fails after every retry.

    Input: ``{"amount": number, "failuresBeforeSuccess": int, "maxAttempts": int,
    "retryIntervalMs": int, "compensate": bool}``. With ``compensate: false`` the failure is
    re-raised after the refund, so the instance ends ``Failed``.
    """
    transfer = context.get_input() or {}
    amount = transfer.get("amount", 100)
    retry = df.RetryOptions(
        first_retry_interval_in_milliseconds=int(transfer.get("retryIntervalMs", 5000)),
        max_number_of_attempts=int(transfer.get("maxAttempts", 3)),
    )
    context.set_custom_status({"stage": "debit"})
    debit = yield context.call_activity("debit_account", amount)
    context.set_custom_status({"stage": "credit"})
    try:
        credit = yield context.call_activity_with_retry(
            "credit_account",
            retry,
            {"key": context.instance_id, "amount": amount,
             "failuresBeforeSuccess": int(transfer.get("failuresBeforeSuccess", 0))},
        )
    except Exception as error:
        refund = yield context.call_activity("refund_debit", debit)
        context.set_custom_status({"stage": "compensated"})
        if not transfer.get("compensate", True):
            raise
        return {"status": "Compensated", "refund": refund, "error": str(error)[:1000]}
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
# Custom status: progress visible through the status URL while the instance runs
# ---------------------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def custom_status_workflow(context: df.DurableOrchestrationContext) -> Orchestration:
    """Report each step in the custom status, then wait for a ``Proceed`` event.

    Input: a list of step names. Clients watch ``customStatus`` on the status URL.
    """
    steps = context.get_input() or ["validate", "enrich", "store"]
    done = []
    for index, step in enumerate(steps):
        context.set_custom_status({"stage": "working", "step": step, "progress": f"{index}/{len(steps)}"})
        done.append((yield context.call_activity("run_step", step)))
    context.set_custom_status({"stage": "waitingForProceed", "progress": f"{len(steps)}/{len(steps)}"})
    note = yield context.wait_for_external_event("Proceed")
    context.set_custom_status({"stage": "done", "note": note})
    return done


@app.activity_trigger(input_name="step")
def run_step(step: str) -> str:
    return f"{step}: ok"
