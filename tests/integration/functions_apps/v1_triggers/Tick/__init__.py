import json

import azure.functions as func


def main(tick: func.TimerRequest) -> str:
    return json.dumps({"pastDue": tick.past_due, "status": tick.schedule_status})
