"""Start an orchestrator and wait for it: 200 with its output, or 202 with the status URLs.

Written in the older style: an ``orchestrationClient`` binding and a named ``http`` output
(``message``) set with ``message.set(...)`` instead of a return value. The wait is taken from
the query string (``?timeoutMs=``, default 10 s).
"""

import json

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, starter: str, message: func.Out[func.HttpResponse]) -> None:
    client = df.DurableOrchestrationClient(starter)
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["functionName"], None, json.loads(body) if body else None)
    timeout = int(req.params.get("timeoutMs", "10000"))
    response = await client.wait_for_completion_or_create_check_status_response(req, instance_id, timeout, 200)
    message.set(response)
