"""Progress output for long CLI operations (purge, wait), on stderr and only on a terminal.

rich draws the spinner and counters; scripts (``--json`` or output not a TTY) see nothing
extra on stderr, so their parsing never breaks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["ProgressLine", "progress_line"]


class ProgressLine(Protocol):
    """Where an operation reports what it is doing now."""

    def update(self, text: str) -> None: ...


class _Silent:
    def update(self, text: str) -> None:
        return None


class _Live:
    def __init__(self, progress: Progress, description: str) -> None:
        self._progress = progress
        self._task = progress.add_task(description, status="")

    def update(self, text: str) -> None:
        self._progress.update(self._task, status=text)


@contextmanager
def progress_line(description: str, *, enabled: bool) -> Iterator[ProgressLine]:
    """A one-line spinner with elapsed time; a no-op when disabled or stderr is not a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield _Silent()
        return
    console = Console(stderr=True)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield _Live(progress, description)
