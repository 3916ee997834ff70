"""The management verbs through a real subprocess, with ``--json``; no worker needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _cli(conn: str, hub: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AzureWebJobsStorage": conn}
    proc = subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", *args, "--task-hub-name", hub],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def _json(conn: str, hub: str, *args: str) -> Any:
    return json.loads(_cli(conn, hub, *args, "--json").stdout)


def test_cli_verbs(storage_connection_string: str) -> None:
    conn, hub = storage_connection_string, "c" + uuid.uuid4().hex[:12]
    started = _json(conn, hub, "start-new", "--function-name", "hello", "--id", "one", "--input", '{"x":1}')
    assert started == {"id": "one"}
    _json(conn, hub, "start-new", "--function-name", "hello", "--id", "two")
    status = _json(conn, hub, "get-runtime-status", "--id", "one", "--show-input")
    assert status["runtimeStatus"] == "Pending" and status["input"] == {"x": 1} and status["name"] == "hello"
    page = _json(conn, hub, "get-instances", "--top", "1", "--runtime-status", "pending running")
    assert len(page["instances"]) <= 1
    every = _json(conn, hub, "get-instances", "--all-pages", "--top", "1")
    assert sorted(s["instanceId"] for s in every["instances"]) == ["one", "two"]
    assert every["continuationToken"] is None
    human = _cli(conn, hub, "get-instances").stdout
    assert "INSTANCE ID" in human and "Continuation token for next set of results" in human
    _json(conn, hub, "raise-event", "--id", "one", "--event-name", "go", "--event-data", "[1]")
    _json(conn, hub, "suspend", "--id", "one", "--reason", "r")
    _json(conn, hub, "terminate", "--id", "two")
    assert _json(conn, hub, "restart", "--id", "one", "--new-instance-id")["id"] != "one"
    assert _json(conn, hub, "get-history", "--id", "one") == []
    assert _json(conn, hub, "purge", "--id", "one")["instancesDeleted"] == 1
    # Pending/Running ones are never purged by filter.
    assert _json(conn, hub, "purge-history", "--runtime-status", "completed")["instancesDeleted"] == 0
    assert _json(conn, hub, "poison", "list") == []
    assert _json(conn, hub, "delete-task-hub") == {"deleted": hub}


def test_cli_errors(storage_connection_string: str) -> None:
    conn, hub = storage_connection_string, "c" + uuid.uuid4().hex[:12]
    _json(conn, hub, "start-new", "--function-name", "hello", "--id", "one")
    cases = [
        (("get-runtime-status", "--id", "missing"), "no orchestration instance"),
        (("purge", "--id", "missing"), "no orchestration instance"),
        (("rewind", "--id", "one"), "must have a status of 'Failed'"),
        (("get-instances", "--runtime-status", "bogus"), "unknown status"),
        (("get-instances", "--continuation-token", "garbage!"), "invalid continuation token"),
        (("start-new", "--id", "x"), "--function-name"),
        (("poison", "drop", "--queue", "q", "--message-id", "m"), "no quarantined message"),
    ]
    for args, message in cases:
        proc = _cli(conn, hub, *args, ok=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
