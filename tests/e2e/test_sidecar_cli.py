"""``durable-azstorage sidecar`` edges the way a user meets them: one line, exit code 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _sidecar(*args: str, connection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "sidecar", "--connection", connection, *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_taken_port_and_open_interface_without_key_are_refused(storage_connection_string: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _sidecar("--host", "127.0.0.1", "--port", str(port), connection=storage_connection_string)
    assert done.returncode == 2
    # The one start-up rule of every serving command (cli/_startup.py): the port is checked first.
    assert done.stderr.strip() == f"error: port {port} is in use; pass --port (e.g. --port {port + 1})"
    done = _sidecar("--host", "0.0.0.0", connection=storage_connection_string)
    assert done.returncode == 2
    *banner, line = done.stderr.strip().splitlines()
    assert all(b.startswith("sidecar on task hub") for b in banner), banner  # what it would serve, then why not
    assert line == (
        "error: refusing to serve plaintext without a key on 0.0.0.0: pass --key (or --tls-cert/--tls-key), "
        "or bind to localhost"
    )
