"""How the CLI shows log records: what ``func start`` shows by default, fields with ``-v``.

Default: the host's story (``durable_azstorage.host`` — function executions, orchestrations
started/completed/failed) and the app's own ``logging`` at INFO, our library internals and the
Azure SDK at WARNING. ``-v`` shows our INFO events with their ``extra=`` fields, ``-vv`` DEBUG
(and the Azure SDK's). ``--quiet`` shows errors only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ..runtimes.execution_log import HOST_LOGGER

__all__ = ["configure_logging"]
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}


class _FieldsFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``: the ``extra=`` fields are the point of an event."""

    def __init__(self, *, fields: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%H:%M:%S")
        self._fields = fields

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self._fields:
            return text
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return text + "".join(f" {k}={_short(v)}" for k, v in extra.items()) if extra else text


class _HostFormatter(logging.Formatter):
    """Host lines as ``func start`` prints them: ``[time] message``; other records with their logger."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        if record.name.startswith(HOST_LOGGER) or (record.levelno == logging.INFO and record.name == "root"):
            return f"[{stamp}.{int(record.msecs):03d}Z] {record.getMessage()}"  # as func start shows them
        text = f"[{stamp}.{int(record.msecs):03d}Z] {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def configure_logging(*, verbose: int, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    package = logging.getLogger("durable_azstorage")
    if quiet:
        root.setLevel(logging.ERROR)
        package.setLevel(logging.ERROR)
        handler.setFormatter(_HostFormatter())
        _utc(handler)
        return
    root.setLevel(logging.INFO if verbose < 2 else logging.DEBUG)
    logging.getLogger("azure").setLevel(logging.WARNING if verbose < 2 else logging.DEBUG)
    package.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)
    logging.getLogger(HOST_LOGGER).setLevel(logging.INFO if verbose < 2 else logging.DEBUG)
    handler.setFormatter(_HostFormatter() if verbose == 0 else _FieldsFormatter(fields=True))
    _utc(handler)


def _utc(handler: logging.Handler) -> None:
    import time

    if handler.formatter is not None:
        handler.formatter.converter = time.gmtime
