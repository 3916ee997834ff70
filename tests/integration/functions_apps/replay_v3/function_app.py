"""replay-check tests: a new version that no longer makes the recorded call (breaks running instances)."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def shipment(context: df.DurableOrchestrationContext):
    return "nothing to pack any more"
    yield  # a generator, as orchestrators are
