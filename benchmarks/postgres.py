"""A throw-away PostgreSQL for the DBOS peer: initdb in a temp folder, pg_ctl on a free port.

Uses the server binaries of the Debian ``postgresql`` package (``/usr/lib/postgresql/*/bin``
or ``PATH``). PostgreSQL refuses to run as root, so as root the data folder is handed to the
``postgres`` system user and the commands run through ``runuser``. Anything missing becomes a
:class:`PostgresUnavailable` whose message the report prints in the DBOS column.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["LocalPostgres", "PostgresUnavailable"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found or started; the message says why."""


def _bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise PostgresUnavailable(f"{name} not found (apt-get install -y postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.url`` - trust auth on 127.0.0.1, removed on exit."""

    user = "bench"

    def __init__(self) -> None:
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.folder / "data"
        self.pid: int | None = None
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/bench"

    def _run(self, argv: list[str]) -> None:
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{Path(argv[-1]).name if argv else ''} failed: {done.stderr.strip()[-400:]}")

    def start(self) -> LocalPostgres:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if self._as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run([initdb, "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-instructions"])
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run([pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"])
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        psql = shutil.which("psql") or _bin("psql")
        done = subprocess.run(
            [
                psql,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                "postgres",
                "-c",
                "CREATE DATABASE bench",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"CREATE DATABASE failed: {done.stderr.strip()[-400:]}")
        return self

    def stop(self) -> None:
        if self.pid is not None:
            try:
                self._run([_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
            except PostgresUnavailable:
                pass
            self.pid = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
