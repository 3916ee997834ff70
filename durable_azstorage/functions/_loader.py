"""Pick the programming model of an app folder: ``function_app.py`` → v2, function folders → v1."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigurationError
from ._index import AppIndex
from ._loader_v2 import SCRIPT, load_v2_app

__all__ = ["load_app"]


def load_app(target: str | os.PathLike[str]) -> AppIndex:
    """Index the app at ``target`` (a folder, a ``function_app.py``, or ``module:attribute``)."""
    path = Path(target)
    if path.is_dir() and not (path / SCRIPT).is_file():
        from ._loader_v1 import load_v1_app, looks_like_v1

        if looks_like_v1(path):
            return load_v1_app(path)
        raise ConfigurationError(
            f"{path}: neither a v2 app ({SCRIPT}) nor a v1 app (folders with function.json) is here"
        )
    return load_v2_app(target)
