"""Start any orchestrator: POST /api/orchestrators/{functionName} with the JSON input as body.

Answers 202 with the status URLs (``statusQueryGetUri`` and friends), as the Durable Functions
samples do.
"""

import json
import logging

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, starter: str) -> func.HttpResponse:
    client = df.DurableOrchestrationClient(starter)
    body = req.get_body()
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return func.HttpResponse("The body must be JSON.", status_code=400)
    instance_id = await client.start_new(req.route_params["functionName"], None, payload)
    logging.info("Started orchestration with ID = '%s'.", instance_id)
    return client.create_check_status_response(req, instance_id)
