"""Fan-out/fan-in: square every work item in parallel, then add the squares up.

Input: ``{"count": n}`` (default 5) — the number of work items.
"""

import azure.durable_functions as df


def orchestrator_function(context: df.DurableOrchestrationContext):
    settings = context.get_input() or {}
    items = yield context.call_activity("E2_GetWorkItems", settings.get("count", 5))
    squares = yield context.task_all([context.call_activity("E2_Square", item) for item in items])
    return {"items": len(items), "sum": sum(squares)}


main = df.Orchestrator.create(orchestrator_function)
