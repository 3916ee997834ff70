"""The JavaScript SDK (@microsoft/durabletask-js, from npm, pinned by tests/js/package-lock.json),
unchanged, runs a chain, a fan-out, an external event and a timer against the sidecar on Azurite.

The test installs the package itself (``npm ci``, once per lockfile) so a fresh machine with
Node.js and npm needs nothing else.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_azstorage.connection import StorageAccount
from tests.sidecar_support import SidecarThread, fast_settings

pytestmark = pytest.mark.e2e

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def _ensure_js_sdk() -> None:
    """``npm ci`` when node_modules is missing or older than the lockfile."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("Node.js and npm are required for the JavaScript SDK test (install Node 20+)")
    lock = (JS_DIR / "package-lock.json").read_bytes()
    stamp = JS_DIR / "node_modules" / ".lock-sha256"
    digest = hashlib.sha256(lock).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR, check=True, timeout=600
    )
    stamp.write_text(digest)


@pytest.fixture(scope="module")
def sidecar(storage_account: StorageAccount) -> Iterator[SidecarThread]:
    _ensure_js_sdk()
    hub = "js" + uuid.uuid4().hex[:12]
    with SidecarThread(storage_account, fast_settings(hub)) as running:
        yield running


def test_js_sdk_chain_fan_out_event_timer(sidecar: SidecarThread) -> None:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "run_patterns.js", sidecar.address], cwd=JS_DIR, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["chain"] == {"status": "COMPLETED", "output": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]}
    assert outcome["fanOut"] == {"status": "COMPLETED", "output": sum(2 * i for i in range(10))}
    assert outcome["approval"] == {"status": "COMPLETED", "output": {"approved": {"by": "js"}}}
    assert outcome["timer"]["status"] == "COMPLETED" and outcome["timer"]["output"] >= 1000
