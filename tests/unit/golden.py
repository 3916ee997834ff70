"""Golden .NET payloads shipped with the tests in ``tests/golden`` (sources in each ``.source.txt``).

The directory can be overridden with ``DURABLE_AZSTORAGE_GOLDEN_DIR`` to check another set.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR_ENV = "DURABLE_AZSTORAGE_GOLDEN_DIR"


def golden_dir() -> Path:
    override = os.environ.get(GOLDEN_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "golden"


def golden_bytes(name: str) -> bytes:
    return (golden_dir() / name).read_bytes()


def golden_names(suffix: str = ".json") -> list[str]:
    """Payload files only (each has a sibling ``.source.txt`` that is not a payload)."""
    return sorted(p.name for p in golden_dir().glob(f"*{suffix}") if p.is_file())
