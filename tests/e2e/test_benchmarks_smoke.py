"""Smoke run of the benchmark suite: tiny sizes, every workload, our engine and the peers at hand.

It checks that the suite works and that its JSON is complete and sane, never how fast anything
is (performance targets are reported by ``python -m benchmarks run``, not asserted in tests).
The DBOS peer is left out: it needs the ``bench`` extra and PostgreSQL's server binaries, which
CI does not install, and its start-up would add as much again; a full ``python -m benchmarks run``
exercises it wherever they are installed. The Durable Functions column is in, so the suite's
Functions app keeps running (the whole test: 36 s measured on a shared 2-core machine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.runner import main
from benchmarks.sizes import WORKLOADS

pytestmark = pytest.mark.e2e


def _check_ok(engine: str, result: dict[str, Any]) -> None:
    where = f"{engine} {result['workload']}"
    assert result["wall_seconds"] > 0, where
    assert result["items_per_second"] > 0, where
    assert result["cpu_seconds"] >= 0, where
    assert result["peak_rss_mib"] > 10, where
    if result["orchestrations"]:
        assert result["orchestrations_per_second"] > 0, where
        assert result["cpu_seconds_per_orchestration"] is not None, where
    latency = result["latency_ms"]
    if latency is not None:
        assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"], where
    if engine == "durable_azstorage":
        tx = result["transactions"]
        assert tx["total"] > 0 and tx["by_service"], where
        assert sum(tx["by_operation"].values()) == tx["total"], where
        assert set(tx["by_service"]) <= {"queue", "table", "blob"}, where
        if result["orchestrations"]:
            assert tx["per_orchestration"] > 0, where
        assert result["ceiling_fraction"] > 0, where


def test_benchmark_suite_smoke(storage_connection_string: str, tmp_path: Path) -> None:
    peers = ["durable_azstorage-sidecar", "durabletask-inmem", "durable_azstorage-functions"]
    out = tmp_path / "bench.json"
    main(
        [
            "run",
            "--size",
            "smoke",
            "--peers",
            ",".join(peers),
            "--connection-string",
            storage_connection_string,
            "--json",
            str(out),
        ]
    )
    report = json.loads(out.read_text())

    env = report["environment"]
    assert env["machine"]["cpu_count"] >= 1 and env["versions"]["durabletask"] and env["versions"]["azurite"]
    assert report["sizes"]["hello_instances"] >= 1 and report["workloads"] == list(WORKLOADS)
    rates = report["ceiling"]["ops_per_second"]
    assert {"queue.put", "queue.get", "queue.delete", "table.upsert", "table.batch"} <= set(rates)
    assert all(rate > 0 for rate in rates.values())

    assert set(report["engines"]) == {"durable_azstorage", *peers}
    for engine, data in report["engines"].items():
        assert data["status"] == "ok", (engine, data.get("reason"))
        by_workload = {r["workload"]: r for r in data["results"]}
        assert set(by_workload) == set(WORKLOADS), engine
        for name, result in by_workload.items():
            if result["status"] == "n/a":
                assert name == "entity-ops" and result["reason"], (engine, result)
                continue
            assert result["status"] == "ok", (engine, name, result.get("reason"))
            _check_ok(engine, result)
    inmem_long = next(r for r in report["engines"]["durabletask-inmem"]["results"] if r["workload"] == "long-history")
    assert inmem_long["replay"]["episodes"] >= report["sizes"]["long_activities"]
    functions = report["engines"]["durable_azstorage-functions"]["results"]
    functions_long = next(r for r in functions if r["workload"] == "long-history")
    assert functions_long["replay"]["episodes"] >= report["sizes"]["long_activities"]  # the probe saw them
    assert report["ratios"]["hello-sequence"]["durabletask-inmem"]["throughput_ours_over_peer"] > 0
    assert any(t["target"].startswith("hello-sequence storage transactions") for t in report["targets"])
