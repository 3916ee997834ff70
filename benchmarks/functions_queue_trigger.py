"""Queue-trigger throughput of the Functions host: ``python -m benchmarks.functions_queue_trigger``.

A private Azurite, a one-function v2 app (``@app.queue_trigger`` that counts), N base64 messages
queued before the host starts; prints the time the host takes to drain them (default host.json
queue settings: batchSize 16, newBatchThreshold 8 x cores) and how long one message on an idle
queue waits to be picked up (maxPollingInterval 1 s here).

    python -m benchmarks.functions_queue_trigger [--messages 500]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
from pathlib import Path

from durable_azstorage.azurite import Azurite
from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost

APP = '''import azure.functions as func
app = func.FunctionApp()
COUNT = {"n": 0}

@app.queue_trigger(arg_name="msg", queue_name="bench", connection="AzureWebJobsStorage")
def consume(msg: func.QueueMessage) -> None:
    COUNT["n"] += 1
'''
HOST_JSON = '{"version": "2.0", "extensions": {"queues": {"maxPollingInterval": "00:00:01"}}}'


async def _until(counter: dict[str, int], count: int) -> None:
    while counter["n"] < count:  # noqa: ASYNC110 - the count is the app's own; polling it is the measure
        await asyncio.sleep(0.005)


async def measure(connection_string: str, messages: int, folder: Path) -> None:
    account = StorageAccount.from_connection_string(connection_string)
    body = base64.b64encode(b'{"x": 1}').decode()
    async with account.queue_service() as service:
        queue = service.get_queue_client("bench")
        await queue.create_queue()
        await asyncio.gather(*(queue.send_message(body) for _ in range(messages)))
        async with FunctionsHost.from_path(folder, account, task_hub_name="qbench", port=0):
            counter = sys.modules["function_app"].COUNT
            started = time.perf_counter()
            await _until(counter, messages)
            elapsed = time.perf_counter() - started
            print(f"{messages} queued messages consumed in {elapsed:.2f} s = {messages / elapsed:.0f} msg/s")
            await asyncio.sleep(3)  # let the empty-queue back-off reach its ceiling
            sent = time.perf_counter()
            await queue.send_message(body)
            await _until(counter, messages + 1)
            print(f"one message on an idle queue picked up after {time.perf_counter() - sent:.2f} s "
                  "(maxPollingInterval 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Azurite() as azurite:
        folder = Path(tmp)
        (folder / "function_app.py").write_text(APP)
        (folder / "host.json").write_text(HOST_JSON)
        asyncio.run(measure(azurite.connection_string, args.messages, folder))


if __name__ == "__main__":
    main()
