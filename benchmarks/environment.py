"""What the numbers were measured on: machine, load, versions, git revision."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["collect_environment", "load_average"]

PACKAGES = (
    "durable-azstorage",
    "durabletask",
    "azure-core",
    "azure-storage-queue",
    "azure-data-tables",
    "azure-storage-blob",
    "dbos",
    "psycopg",
    "sqlalchemy",
    "grpcio",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _postgres_version() -> str | None:
    from .postgres import PostgresUnavailable, _bin

    try:
        done = subprocess.run([_bin("postgres"), "--version"], capture_output=True, text=True, check=False)
    except (PostgresUnavailable, OSError):
        return None
    return done.stdout.strip() or None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def collect_environment() -> dict[str, Any]:
    from durable_azstorage.azurite import AZURITE_VERSION

    status = _git("status", "--porcelain")
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "ram_gib": _ram_gib(),
            "os": platform.platform(),
            "load_average_at_start": load_average(),
        },
        "versions": {
            "python": platform.python_version(),
            **{name: _version(name) for name in PACKAGES},
            "azurite": AZURITE_VERSION,
            "postgresql": _postgres_version(),
        },
        "git": {
            "revision": _git("rev-parse", "HEAD"),
            "dirty": bool(status) if status is not None else None,
        },
    }
