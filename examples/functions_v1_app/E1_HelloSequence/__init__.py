"""Function chaining: greet each city in turn (input: a list of cities)."""

import azure.durable_functions as df


def orchestrator_function(context: df.DurableOrchestrationContext):
    cities = context.get_input() or ["Tokyo", "Seattle", "London"]
    greetings = []
    for city in cities:
        greetings.append((yield context.call_activity("E1_SayHello", city)))
        context.set_custom_status({"greeted": len(greetings), "of": len(cities)})
    return greetings


main = df.Orchestrator.create(orchestrator_function)
