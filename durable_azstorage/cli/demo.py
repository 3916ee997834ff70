"""The embedded demo behind ``durable-azstorage demo`` and ``./dev.sh demo``.

Starts a persistent Azurite under the data folder (unless a connection is given), runs a
worker and two classic orchestrations (a chain of activities and a fan-out/fan-in) written
with the durabletask SDK, prints results, status and where the data lives, and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Generator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from durabletask import task

from ..aio import TaskHubClient
from ..azurite import Azurite
from ..connection import StorageAccount
from ..model import OrchestrationState
from ..settings import DEFAULT_TASK_HUB_NAME, WorkerSettings
from ..worker import Worker
from .emulator import DEFAULT_DATA_DIR

__all__ = ["demo", "run_demo"]


def say_hello(ctx: task.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


def square(ctx: task.ActivityContext, value: int) -> int:
    return value * value


def hello_cities(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    """Function chaining: each activity starts after the previous one finished."""
    greetings = []
    for city in ("Tokyo", "Seattle", "London"):
        greetings.append((yield ctx.call_activity(say_hello, input=city)))
    return greetings


def sum_of_squares(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    """Fan-out/fan-in: all activities run in parallel, the orchestration waits for all."""
    squares = yield task.when_all([ctx.call_activity(square, input=i) for i in range(1, count + 1)])
    return sum(squares)


@contextlib.contextmanager
def _storage(data_dir: Path, connection_string: str | None) -> Iterator[tuple[str, str]]:
    if connection_string:
        yield connection_string, "the storage account of the given connection string"
        return
    location = data_dir / "azurite"
    with Azurite(location=location) as emulator:
        yield emulator.connection_string, f"the embedded Azurite, data folder {location.resolve()}"


def _describe(label: str, state: OrchestrationState, seconds: float) -> str:
    output = None if state.output is None else json.loads(state.output)
    status = "Unknown" if state.runtime_status is None else state.runtime_status.name
    return f"  {label:<22} {status:<10} {seconds:5.2f}s  id={state.instance_id}  output={output}"


async def _run(account: StorageAccount, task_hub_name: str) -> int:
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        worker_id="demo-worker",  # stable, so a second run re-owns its partitions at once
        max_queue_polling_interval=timedelta(seconds=1),
    )
    worker = Worker(account, settings)
    worker.add_orchestrator(hello_cities)
    worker.add_orchestrator(sum_of_squares)
    worker.add_activity(say_hello)
    worker.add_activity(square)
    async with worker:
        client = await TaskHubClient.open(account, task_hub_name)
        async with client:
            click.echo(f"Worker {settings.worker_id} owns {len(worker.owned_partitions)} partition(s).")
            results = []
            for label, name, payload in (
                ("chain (3 activities)", "hello_cities", None),
                ("fan-out (100 squares)", "sum_of_squares", 100),
            ):
                started = time.perf_counter()
                instance_id = await client.schedule_new_orchestration(name, input=payload)
                state = await client.wait_for_completion(instance_id, timeout=120)
                results.append(_describe(label, state, time.perf_counter() - started))
            click.echo("Orchestrations:")
            for line in results:
                click.echo(line)
    return 0


def run_demo(*, data_dir: Path, connection_string: str | None, task_hub_name: str) -> int:
    with _storage(data_dir, connection_string) as (conn, where):
        click.echo(f"Task hub {task_hub_name} on {where}")
        code = asyncio.run(_run(StorageAccount.from_connection_string(conn), task_hub_name))
        click.echo(
            f"Tables {task_hub_name}History / {task_hub_name}Instances / {task_hub_name}Partitions, "
            f"queues {task_hub_name.lower()}-control-00..03 and {task_hub_name.lower()}-workitems."
        )
    click.echo(NEXT_STEPS)
    return code


NEXT_STEPS = """
Next, three commands to try, each in a new terminal where you ran
`source .venv/bin/activate; export AzureWebJobsStorage=UseDevelopmentStorage=true`:
  1. durable-azstorage azurite                       # the storage emulator on ports 10000-10002
  2. durable-azstorage run examples/functions_app    # a Durable Functions app, like `func start`
  3. curl -X POST localhost:7071/api/orchestrators/hello_sequence -d '["Tokyo", "Lima"]'
     durable-azstorage get-instances --app-dir examples/functions_app
More: README.md, docs/cli.md, docs/functions-apps.md"""


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where the embedded Azurite keeps its data.",
)
@click.option("--connection", envvar="AzureWebJobsStorage", help="Use this storage account instead of Azurite.")
@click.option("--task-hub-name", default=DEFAULT_TASK_HUB_NAME, show_default=True)
def demo(data_dir: Path, connection: str | None, task_hub_name: str) -> None:
    """Run a worker and sample orchestrations on an embedded Azurite, print the results, stop."""
    sys.exit(run_demo(data_dir=data_dir, connection_string=connection, task_hub_name=task_hub_name))
