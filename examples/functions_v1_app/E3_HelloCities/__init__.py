"""Sub-orchestrations: one E1_HelloSequence per group of cities, run in parallel.

Input: a list of city lists, e.g. ``[["Lima"], ["Oslo", "Rome"]]``.
"""

import azure.durable_functions as df


def orchestrator_function(context: df.DurableOrchestrationContext):
    groups = context.get_input() or [["Tokyo"], ["Seattle", "London"]]
    children = [
        context.call_sub_orchestrator("E1_HelloSequence", group, f"{context.instance_id}:{n}")
        for n, group in enumerate(groups)
    ]
    return (yield context.task_all(children))


main = df.Orchestrator.create(orchestrator_function)
