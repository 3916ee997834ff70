"""Durable Functions started by a timer, a storage queue and blobs — one Azure Functions v2 app.

(No ``from __future__ import annotations``: the Python worker reads binding annotations as types.)

Only ``azure-functions`` and ``azure-functions-durable`` are used, so this folder deploys to Azure
Functions unchanged, and runs locally with ``durable-azstorage run examples/functions_triggers_app``.

* ``inventory_timer`` (timer, every 6 hours, ``useMonitor``) starts the ``inventory_monitor``
  orchestration; when the host was down at a due time it fires once at start-up with
  ``past_due`` set, which the monitor records.
* ``order_intake`` (queue ``orders``) starts ``order_workflow`` for each JSON order; a message
  that is not an order fails, is retried, then lands in ``orders-poison``.
* ``order_workflow`` calls ``validate_order``, ``write_receipt`` (blob output
  ``receipts/{orderId}.json``) and ``notify_shipping`` (queue output ``shipments``).
* ``receipt_archived`` (blob trigger ``receipts/{name}.json``) copies each receipt to
  ``archive/{name}.json`` (blob output) and posts an ``audit`` message (queue output) — once per
  receipt version, across restarts and hosts.
* ``submit_order`` (``POST /api/orders``) puts the request body on the ``orders`` queue.
* ``inventory_report`` (activity) reads ``inventory/stock.json`` through a blob input binding.
"""

import json
import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

Orchestration = Generator[Any, Any, Any]
MONITOR_ID = "inventory-monitor"


# ---------------------------------------------------------------------------------------------
# Timer → monitor orchestration
# ---------------------------------------------------------------------------------------------
@app.timer_trigger(schedule="0 0 */6 * * *", arg_name="timer", use_monitor=True)
@app.durable_client_input(client_name="client")
async def inventory_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Start (or restart) the inventory monitor; one instance id, so one monitor at a time."""
    status = await client.get_status(MONITOR_ID)
    if status and status.runtime_status in (df.OrchestrationRuntimeStatus.Running,
                                            df.OrchestrationRuntimeStatus.Pending):
        logging.info("inventory monitor still running; timer fired (past_due=%s)", timer.past_due)
        return
    await client.start_new("inventory_monitor", MONITOR_ID,
                           {"pastDue": timer.past_due, "scheduleStatus": timer.schedule_status})


@app.orchestration_trigger(context_name="context")
def inventory_monitor(context: df.DurableOrchestrationContext) -> Orchestration:
    started = context.get_input() or {}
    report = yield context.call_activity("inventory_report", None)
    low = [sku for sku, count in report.items() if count < 5]
    if low:
        yield context.call_activity("notify_shipping", {"restock": low})
    return {"pastDue": started.get("pastDue", False), "low": low, "checked": sorted(report)}


@app.activity_trigger(input_name="request")
@app.blob_input(arg_name="stock", path="inventory/stock.json", connection="AzureWebJobsStorage")
def inventory_report(request: Any, stock: str) -> dict[str, int]:
    """Stock levels from a blob (an empty inventory when the blob does not exist)."""
    return json.loads(stock) if stock else {}


# ---------------------------------------------------------------------------------------------
# Queue → order orchestration → activities with blob and queue outputs
# ---------------------------------------------------------------------------------------------
@app.queue_trigger(arg_name="msg", queue_name="orders", connection="AzureWebJobsStorage")
@app.durable_client_input(client_name="client")
async def order_intake(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    """One orchestration per order; bad messages raise, are retried, then go to orders-poison."""
    order = msg.get_json()  # ValueError for a body that is not JSON
    if not isinstance(order, dict) or "orderId" not in order:
        raise ValueError(f"message {msg.id} is not an order: {msg.get_body()[:80]!r}")
    order["dequeueCount"] = msg.dequeue_count
    await client.start_new("order_workflow", f"order-{order['orderId']}", order)


@app.orchestration_trigger(context_name="context")
def order_workflow(context: df.DurableOrchestrationContext) -> Orchestration:
    order = context.get_input()
    total = yield context.call_activity("validate_order", order)
    receipt = {"orderId": order["orderId"], "total": total, "items": order.get("items", [])}
    yield context.call_activity("write_receipt", receipt)
    yield context.call_activity("notify_shipping", {"orderId": order["orderId"]})
    return {"orderId": order["orderId"], "total": total, "receipt": f"receipts/{order['orderId']}.json"}


@app.activity_trigger(input_name="order")
def validate_order(order: dict) -> float:
    items = order.get("items") or []
    if not items:
        raise ValueError(f"order {order.get('orderId')} has no items")
    return round(sum(float(i.get("price", 0)) * int(i.get("quantity", 1)) for i in items), 2)


@app.activity_trigger(input_name="receipt")
@app.blob_output(arg_name="blob", path="receipts/{orderId}.json", connection="AzureWebJobsStorage")
def write_receipt(receipt: dict, blob: func.Out[str]) -> str:
    """``{orderId}`` in the path comes from the activity input, as on the Functions host."""
    blob.set(json.dumps(receipt))
    return f"receipts/{receipt['orderId']}.json"


@app.activity_trigger(input_name="notice")
@app.queue_output(arg_name="shipments", queue_name="shipments", connection="AzureWebJobsStorage")
def notify_shipping(notice: dict, shipments: func.Out[str]) -> None:
    shipments.set(json.dumps(notice))


# ---------------------------------------------------------------------------------------------
# Blob trigger with blob and queue outputs
# ---------------------------------------------------------------------------------------------
@app.blob_trigger(arg_name="receipt", path="receipts/{name}.json", connection="AzureWebJobsStorage")
@app.blob_output(arg_name="archived", path="archive/{name}.json", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="audit", queue_name="audit", connection="AzureWebJobsStorage")
def receipt_archived(receipt: func.InputStream, archived: func.Out[bytes], audit: func.Out[str]) -> None:
    data = receipt.read()
    archived.set(data)
    audit.set(json.dumps({"blob": receipt.name, "length": receipt.length}))


# ---------------------------------------------------------------------------------------------
# HTTP → queue
# ---------------------------------------------------------------------------------------------
@app.route(route="orders", methods=["POST"])
@app.queue_output(arg_name="orders", queue_name="orders", connection="AzureWebJobsStorage")
def submit_order(req: func.HttpRequest, orders: func.Out[str]) -> func.HttpResponse:
    try:
        order = req.get_json()
    except ValueError:
        return func.HttpResponse("the body must be a JSON order", status_code=400)
    orders.set(json.dumps(order))
    return func.HttpResponse(json.dumps({"queued": order.get("orderId")}), status_code=202,
                             mimetype="application/json")
