"""A small v2 app for the host tests (the full example lives in examples/functions_app)."""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["functionName"], None, json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@app.route(route="ops/{instanceId}/{op}", methods=["POST", "GET"])
@app.durable_client_input(client_name="client")
async def ops(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, op = req.route_params["instanceId"], req.route_params["op"]
    if op == "raise":
        await client.raise_event(instance_id, "Approval", req.get_json())
        return func.HttpResponse(status_code=202)
    if op == "status":
        status = await client.get_status(instance_id)
        return func.HttpResponse(json.dumps({"runtimeStatus": status.runtime_status.value, "output": status.output}),
                                 mimetype="application/json")
    if op == "wait":
        return await client.wait_for_completion_or_create_check_status_response(req, instance_id, 20000, 200)
    if op == "terminate":
        await client.terminate(instance_id, "stop")
        return func.HttpResponse(status_code=202)
    if op == "signal":
        await client.signal_entity(df.EntityId("Counter", instance_id), "add", int(req.params.get("n", "1")))
        return func.HttpResponse(status_code=202)
    if op == "entity":
        state = await client.read_entity_state(df.EntityId("Counter", instance_id))
        return func.HttpResponse(json.dumps({"exists": state.entity_exists, "state": state.entity_state}),
                                 mimetype="application/json")
    return func.HttpResponse("unknown op", status_code=400)


@app.orchestration_trigger(context_name="context")
def hello_orchestrator(context: df.DurableOrchestrationContext):
    cities = context.get_input() or ["Tokyo", "Seattle"]
    results = []
    for city in cities:
        results.append((yield context.call_activity("hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    answer = yield context.wait_for_external_event("Approval")
    total = yield context.call_entity(df.EntityId("Counter", "approvals"), "add", 1)
    return {"answer": answer, "approvals": total}


@app.activity_trigger(input_name="city")
def hello(city: str) -> str:
    return f"Hello {city}"


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
        context.set_state(value)
    context.set_result(value)
