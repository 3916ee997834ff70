"""What the storage endpoint itself sustains, measured with a load generator that is not CPU-bound.

Each operation class runs ``concurrency`` async loops for ``seconds`` against a fresh queue or
table. The load generator uses the lean data path (``durable_azstorage.lean_rest``: signed
requests on one aiohttp session, no azure-core pipeline), which costs a fraction of the SDK
clients' CPU per request; the cores it used are reported beside each rate
(``client_cores``), so a reader can see that the endpoint, not the generator, set the rate.
A workload's transaction mix, priced at these rates, gives the time the storage alone would
need for it: ``implied_seconds = sum(count[op] / rate[class(op)])``; the fraction of the ceiling
a workload reached is ``implied_seconds / wall_seconds``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from durable_azstorage.connection import StorageAccount

__all__ = ["OPERATION_CLASS", "implied_seconds", "measure_ceiling"]

PAYLOAD = "x" * 600  # about the size of a small DTAS message / history row

# (service, operation) -> the measured class whose rate prices it
OPERATION_CLASS: dict[tuple[str, str], str] = {
    ("queue", "PutMessage"): "queue.put",
    ("queue", "UpdateMessage"): "queue.put",
    ("queue", "ReceiveMessages"): "queue.get",
    ("queue", "PeekMessages"): "queue.get",
    ("queue", "GetQueueMetadata"): "queue.get",
    ("queue", "DeleteMessage"): "queue.delete",
    ("table", "EntityGroupTransaction"): "table.batch",
    ("table", "UpsertMerge"): "table.upsert",
    ("table", "UpsertReplace"): "table.upsert",
    ("table", "InsertEntity"): "table.upsert",
    ("table", "DeleteEntity"): "table.upsert",
    ("table", "GetEntity"): "table.get",
    ("table", "QueryEntities"): "table.query",
}


_CPU: dict[str, float] = {}


async def _loop(concurrency: int, seconds: float, op: Callable[[int], Awaitable[Any]]) -> float:
    """Operations per second; the client CPU per operation is left in ``_CPU["last"]``."""
    deadline = time.perf_counter() + seconds
    cpu0 = time.process_time()
    done = 0
    counter = iter(range(10**9))

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op(next(counter))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    _CPU["last"] = (time.process_time() - cpu0) / max(done, 1)
    return done / (time.perf_counter() - started)


async def _measure_once(
    connection_string: str, concurrency: int, seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Operations per second and client CPU ms per operation, by class, at one concurrency."""
    rates: dict[str, float] = {}
    cpu: dict[str, float] = {}

    async def timed(key: str, op: Callable[[int], Awaitable[Any]]) -> None:
        rates[key] = await _loop(concurrency, seconds, op)
        cpu[key] = _CPU["last"] * 1000

    name = "ceiling" + uuid.uuid4().hex[:12]
    account = StorageAccount.from_connection_string(connection_string).with_data_path("lean")
    async with account.queue_service() as qs:
        queue = qs.get_queue_client(name)
        await queue.create_queue()
        await timed("queue.put", lambda _: queue.send_message(PAYLOAD))
        received: list[Any] = []

        async def get(_: int) -> None:
            async for message in queue.receive_messages(max_messages=1, visibility_timeout=300):
                received.append(message)

        await timed("queue.get", get)

        async def delete(_: int) -> None:
            if received:
                await queue.delete_message(received.pop())
            else:  # ran out of messages: keep the loop honest with a put + delete pair
                sent = await queue.send_message(PAYLOAD)
                await queue.delete_message(sent)

        await timed("queue.delete", delete)
        backlog = await _backlog_rates(queue, concurrency, seconds)
        await queue.delete_queue()
    async with account.table_service() as ts:
        await ts.create_table(name)
        table = ts.get_table_client(name)

        def row(i: int, partition: str | None = None) -> dict[str, Any]:
            return {"PartitionKey": partition or f"p{i % 16}", "RowKey": f"{i:09d}", "Data": PAYLOAD}

        await timed("table.upsert", lambda i: table.upsert_entity(row(i)))
        for i in range(16):  # the rows the get loop reads, however short the upsert loop was
            await table.upsert_entity(row(i))
        await timed("table.get", lambda i: table.get_entity(f"p{i % 16}", f"{i % 16:09d}"))

        async def query(i: int) -> None:
            async for _ in table.query_entities(f"PartitionKey eq 'p{i % 16}'"):
                break

        await timed("table.query", query)

        async def batch(i: int) -> None:
            partition = f"b{i}"
            await table.submit_transaction([("upsert", row(j, partition)) for j in range(10)])

        await timed("table.batch", batch)
        await ts.delete_table(name)
    rates.update(backlog)
    return rates, cpu


async def _backlog_rates(queue: Any, concurrency: int, seconds: float) -> dict[str, float]:
    """Put + delete pairs while 1,000 invisible messages sit in the queue (a fan-out's backlog).

    Not used to price workloads; shown because the emulator's queue operations slow down as
    the number of stored messages grows, which real Azure queues do not.
    """
    gate = asyncio.Semaphore(concurrency)

    async def fill(_: int) -> None:
        async with gate:
            await queue.send_message(PAYLOAD, visibility_timeout=600)

    await asyncio.gather(*(fill(i) for i in range(1000)))

    async def pair(_: int) -> None:
        sent = await queue.send_message(PAYLOAD, visibility_timeout=600)
        await queue.delete_message(sent)

    return {"queue.put+delete@1000": 2 * await _loop(concurrency, seconds, pair)}


async def measure_ceiling(connection_string: str, *, concurrency: int, seconds: float) -> dict[str, Any]:
    """The best rate per class over two concurrency levels, with what each level gave.

    Level one is the benchmark's concurrency setting (the worker's activity concurrency);
    level two is five times that, about the number of storage calls in flight when 100
    orchestrations run at once. Client CPU per operation is what the Azure SDK pipeline costs
    this Python process for one transaction.
    """
    levels: dict[str, Any] = {}
    best: dict[str, float] = {}
    for level in (concurrency, concurrency * 5):
        rates, cpu = await _measure_once(connection_string, level, seconds)
        levels[str(level)] = {
            "ops_per_second": {k: round(v, 1) for k, v in rates.items()},
            "client_cpu_ms_per_op": {k: round(v, 2) for k, v in cpu.items()},
            "client_cores": {k: round(cpu[k] * rates[k] / 1000, 2) for k in cpu if k in rates},
        }
        for key, rate in rates.items():
            if "@" not in key:  # backlog figures are shown, not used as the ceiling
                best[key] = max(best.get(key, 0.0), rate)
    return {
        "concurrency": [concurrency, concurrency * 5],
        "seconds_per_class": seconds,
        "payload_bytes": len(PAYLOAD),
        "table_batch_rows": 10,
        "ops_per_second": {k: round(v, 1) for k, v in best.items()},
        "levels": levels,
    }


def implied_seconds(counts: Counter[tuple[str, str]], rates: dict[str, float]) -> float | None:
    """Seconds the storage alone would need for this transaction mix at the ceiling rates."""
    if not rates or not counts:
        return None
    fallback = sum(rates.values()) / len(rates)
    total = 0.0
    for key, count in counts.items():
        rate = rates.get(OPERATION_CLASS.get(key, ""), fallback)
        total += count / rate
    return total
