"""The deployment validators live in their own virtualenv (infra/validators.txt, ``./dev.sh tools``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    """``.venv-deploy/bin`` (or $DURABLE_AZSTORAGE_TOOLS_VENV/bin), installed on first use."""
    venv = Path(os.environ.get("DURABLE_AZSTORAGE_TOOLS_VENV", REPO / ".venv-deploy"))
    if not venv.is_absolute():
        venv = REPO / venv
    if not any(venv.glob(".installed-*")):
        subprocess.run([str(REPO / "dev.sh"), "tools"], cwd=REPO, check=True, timeout=900)
    return venv / "bin"
