"""``durable-azstorage run APP_DIR`` on a v1 (function.json) app, as a subprocess, driven over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "functions_v1_app"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, body: Any = None, method: str = "GET") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _poll(probe: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


def test_run_a_v1_app_folder(storage_connection_string: str, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "Broken").mkdir()
    (app / "Broken" / "function.json").write_text('{"bindings": [}')
    hub = "v1cli" + uuid.uuid4().hex[:8]
    port = _free_port()
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable_azstorage.cli", "run", str(app), "--port", str(port), "--task-hub-name", hub],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        def started() -> Any:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return _request(f"{base}/api/counters/none")[0] == 404
            except OSError:
                return False

        _poll(started, 30, "the host answers")
        status, payload = _request(f"{base}/api/orchestrators/E1_HelloSequence", ["Bern", "Kyiv"], "POST")
        assert status == 202, payload

        def finished() -> Any:
            code, body = _request(payload["statusQueryGetUri"])
            return body if code == 200 else None

        done = _poll(finished, 45, "E1_HelloSequence completes")
        assert done["runtimeStatus"] == "Completed" and done["output"] == ["Hello Bern!", "Hello Kyiv!"]
        assert done["customStatus"] == {"greeted": 2, "of": 2}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert "warning: function 'Broken' was not loaded" in stderr and "invalid JSON at line 1" in stderr
    assert "(v1 programming model)" in stderr and "HttpStart: [POST]" in stderr


def test_run_reports_a_broken_host_json_in_one_line(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "host.json").write_text('{"version": "2.0",\n "extensions": }')
    proc = subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "run", str(app), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "host.json" in proc.stderr and "line 2" in proc.stderr and "Traceback" not in proc.stderr
