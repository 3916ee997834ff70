"""A Python 3.13 virtual environment with azure-functions-durable 2.x, built by the tests when missing.

The 2.x SDK needs Python >= 3.13 while the project's own venv may be older, so the tests that
run 2.x apps build a second venv: the pinned SDK (examples/functions_v2x_app/requirements.txt)
plus this project's runtime dependencies (pyproject.toml), and run durable_azstorage from the
checkout through ``PYTHONPATH``. It is cached in the user's cache folder under a key of those
pins, so it is built once per machine and version set (about 2 minutes), never per test run.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "functions_v2x_app"
REQUIREMENTS = APP / "requirements.txt"


def find_python313() -> str:
    """``DURABLE_AZSTORAGE_PY313``, ``python3.13`` on PATH, or pyenv's 3.13; a clear error otherwise."""
    candidates = [os.environ.get("DURABLE_AZSTORAGE_PY313", ""), shutil.which("python3.13") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and _is_313(candidate):
            return candidate
    raise RuntimeError(
        "azure-functions-durable 2.x needs Python 3.13: install it (e.g. `pyenv install 3.13`) "
        "or set DURABLE_AZSTORAGE_PY313 to its interpreter"
    )


def _is_313(python: str) -> bool:
    """Whether it runs and is 3.13+ (a pyenv shim on PATH may name a version that is not installed)."""
    check = [python, "-c", "import sys; raise SystemExit(sys.version_info < (3, 13))"]
    return subprocess.run(check, capture_output=True).returncode == 0


def _pins() -> list[str]:
    """The SDK pins and the project's runtime dependencies (with croniter of the functions extra)."""
    text = (REPO / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    assert block is not None, "pyproject.toml has no dependencies list"
    project = re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    croniter = re.findall(r'"(croniter[^"]*)"', text)
    sdk = [line.strip() for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [*project, *croniter[:1], *sdk]


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "durable-azstorage"


def ensure_functions2x_python() -> Path:
    """The venv's interpreter, building the venv first when it is not there yet."""
    pins = _pins()
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    venv = _cache_root() / f"functions2x-py313-{key}"
    python = venv / "bin" / "python"
    stamp = venv / ".complete"
    if stamp.is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"functions2x-py313-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions on one machine build it once
        if stamp.is_file():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([find_python313(), "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
            check=True,
        )
        stamp.touch()
    return python


def functions2x_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ``python -m durable_azstorage.cli`` in that venv: the checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env
