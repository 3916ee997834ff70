"""One engine's run in its own process (``python -m benchmarks.child``), JSON to ``--out``.

Each engine gets a fresh interpreter so that its threads (gRPC, DBOS pollers), its global
state and its memory do not leak into the others' CPU and RSS figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import traceback
from typing import Any

from .engines.base import Engine, ReplayProbe
from .measure import ServerCpu
from .sizes import Sizes
from .workloads import run_workload


def _engine(args: argparse.Namespace) -> Engine:
    if args.engine == "durable_azstorage":
        from .engines.azstorage import AzStorageEngine, default_settings

        return AzStorageEngine(args.connection_string, server_pid=args.server_pid, **default_settings())
    if args.engine == "durable_azstorage-otel":
        from .engines.azstorage import AzStorageEngine, default_settings
        from .engines.otel import enable_in_memory_telemetry

        enable_in_memory_telemetry()
        return AzStorageEngine(args.connection_string, server_pid=args.server_pid, **default_settings())
    if args.engine == "durable_azstorage-sidecar":
        from .engines.azstorage import default_settings
        from .engines.sidecar import SidecarEngine

        return SidecarEngine(args.connection_string, server_pid=args.server_pid, **default_settings())
    if args.engine in ("durable_azstorage-functions", "durable_azstorage-functions-fullreplay"):
        from .engines.azstorage import default_settings
        from .engines.functions import FunctionsEngine, FunctionsFullReplayEngine

        cls = FunctionsEngine if args.engine == "durable_azstorage-functions" else FunctionsFullReplayEngine
        return cls(args.connection_string, server_pid=args.server_pid, **default_settings())
    if args.engine == "durabletask-inmem":
        from .engines.dtmem import DurableTaskInMemoryEngine

        return DurableTaskInMemoryEngine()
    if args.engine == "dbos-postgres":
        from .engines.dbos_pg import DbosEngine

        return DbosEngine(args.database_url, server_pid=args.server_pid)
    raise SystemExit(f"unknown engine {args.engine}")


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = Sizes(**json.loads(args.sizes))
    out: dict[str, Any] = {"engine": args.engine, "results": []}
    if args.ceiling:
        from .ceiling import measure_ceiling

        out["ceiling"] = await measure_ceiling(
            args.connection_string, concurrency=sizes.concurrency, seconds=sizes.ceiling_seconds
        )
    replay = None
    if args.engine in ("durable_azstorage", "durable_azstorage-otel"):
        replay = ReplayProbe("runtime").install()
    elif args.engine in ("durable_azstorage-functions", "durable_azstorage-functions-fullreplay"):
        replay = ReplayProbe("functions").install()
    elif args.engine in ("durabletask-inmem", "durable_azstorage-sidecar"):
        replay = ReplayProbe("executor").install()
    server = ServerCpu(args.server_pid)
    names = args.workloads.split(",")
    engine = _engine(args)
    if engine.fresh_per_workload:
        for name in names:
            engine = _engine(args)
            async with engine:
                await _warm_up(engine, sizes)
                out["results"].append(await run_workload(engine, name, sizes, replay, server))
            await engine.cleanup()
        return out
    async with engine:
        await _warm_up(engine, sizes)
        for name in names:
            out["results"].append(await run_workload(engine, name, sizes, replay, server))
    return out


async def _warm_up(engine: Engine, sizes: Sizes) -> None:
    """One hello-sequence before measuring: imports, connections, partitions, caches."""
    warm = await engine.start_many("hello_sequence", [None])
    await engine.wait_all(warm, sizes.timeout_seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", required=True)
    parser.add_argument("--workloads", required=True)
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--connection-string", default="")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--ceiling", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        result = asyncio.run(_run(args))
    except Exception as exc:
        result = {"engine": args.engine, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    if args.engine == "durable_azstorage-otel":
        from .engines.otel import summary

        result["telemetry"] = summary()
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
