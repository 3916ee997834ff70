"""replay-check tests: the deployed version of a Functions app (waits for an event mid-way)."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def shipment(context: df.DurableOrchestrationContext):
    packed = yield context.call_activity("pack", "box")
    yield context.wait_for_external_event("go")
    shipped = yield context.call_activity("ship", packed)
    return shipped


@app.activity_trigger(input_name="item")
def pack(item: str) -> str:
    return f"packed {item}"


@app.activity_trigger(input_name="item")
def ship(item: str) -> str:
    return f"shipped {item}"
