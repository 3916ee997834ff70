"""The benchmark suite's tracing-overhead variant: hello-sequence with telemetry on next to off.

Checks that the ``durable_azstorage-otel`` engine runs with traces and metrics really on and that
both rows carry CPU per orchestration; never how large the overhead is (that is reported by
``python -m benchmarks run``, see docs/performance.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.runner import main

pytestmark = pytest.mark.e2e


def test_hello_sequence_with_tracing_on_next_to_off(storage_connection_string: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    main(
        [
            "run", "--size", "smoke", "--workloads", "hello-sequence", "--peers", "durable_azstorage-otel",
            "--connection-string", storage_connection_string, "--json", str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert set(report["engines"]) == {"durable_azstorage", "durable_azstorage-otel"}
    for engine, data in report["engines"].items():
        assert data["status"] == "ok", (engine, data.get("reason"))
        (result,) = data["results"]
        assert result["workload"] == "hello-sequence" and result["status"] == "ok", (engine, result)
        assert result["cpu_seconds_per_orchestration"] is not None, engine
    telemetry = report["engines"]["durable_azstorage-otel"]["telemetry"]
    hellos = report["sizes"]["hello_instances"] + 1  # + the warm-up orchestration
    assert telemetry["by_type"]["orchestration"] == hellos, telemetry
    assert telemetry["by_type"]["activity"] == 5 * hellos, telemetry  # the runs (SERVER)
    assert telemetry["by_type"]["activity.client"] == 5 * hellos, telemetry  # the scheduling (CLIENT)
    assert "telemetry" not in report["engines"]["durable_azstorage"]
