"""The Counter entity over HTTP.

``POST /api/counters/{key}/{operation}`` (body: the operation's JSON input) signals the
entity and answers 202; ``GET /api/counters/{key}`` reads its state (404 when it does not
exist).
"""

import json

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, client: str) -> func.HttpResponse:
    durable = df.DurableOrchestrationClient(client)
    entity = df.EntityId("Counter", req.route_params["key"])
    if req.method == "POST":
        operation = req.route_params.get("operation") or "add"
        body = req.get_body()
        await durable.signal_entity(entity, operation, json.loads(body) if body else None)
        return func.HttpResponse(status_code=202)
    state = await durable.read_entity_state(entity)
    if not state.entity_exists:
        return func.HttpResponse(json.dumps({"error": "no such counter"}), status_code=404, mimetype="application/json")
    return func.HttpResponse(json.dumps({"key": entity.key, "value": state.entity_state}), mimetype="application/json")
