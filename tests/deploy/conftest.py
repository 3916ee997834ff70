"""The deployment validators live in a virtualenv of their own (infra/validators.txt, ``./dev.sh tools``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tools_venv() -> Path:
    """Where ``./dev.sh tools`` puts them: $DURABLE_AZSTORAGE_TOOLS_VENV, else the user's cache."""
    explicit = os.environ.get("DURABLE_AZSTORAGE_TOOLS_VENV")
    if explicit:
        return Path(explicit) if Path(explicit).is_absolute() else REPO / explicit
    digest = hashlib.sha256((REPO / "infra" / "validators.txt").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "durable-azstorage" / f"validators-{digest}"


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    """The validators' ``bin`` folder, installed on first use."""
    venv = tools_venv()
    if not (venv / ".installed").exists():
        subprocess.run([str(REPO / "dev.sh"), "tools"], cwd=REPO, check=True, timeout=900)
    return venv / "bin"
