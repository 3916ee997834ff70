"""replay-check tests: a new version that renamed the first activity (breaks running instances)."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def shipment(context: df.DurableOrchestrationContext):
    packed = yield context.call_activity("pack_carefully", "box")
    yield context.wait_for_external_event("go")
    shipped = yield context.call_activity("ship", packed)
    return shipped


@app.activity_trigger(input_name="item")
def pack_carefully(item: str) -> str:
    return f"packed {item} carefully"


@app.activity_trigger(input_name="item")
def ship(item: str) -> str:
    return f"shipped {item}"
