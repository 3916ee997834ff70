"""Start and stop a private Azurite (the Azure Storage emulator from npm).

Used by the test fixtures (in-memory, one per test session) and by the embedded demo
(persistent under ``.durable/``) on ports chosen by the OS, so they never clash with or share
state with an Azurite the user runs; and by ``durable-azstorage azurite`` on the standard ports
10000-10002 (what ``UseDevelopmentStorage=true`` means). The npm package is pinned by the
lockfile shipped in ``_azurite/`` and installed with ``npm ci`` into a cache folder named after
the lockfile's hash. On Linux the emulator gets a parent-death signal, so even a SIGKILL of
the Python process that started it leaves no node process behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .errors import ConfigurationError

__all__ = [
    "AZURITE_VERSION",
    "DEV_ACCOUNT_KEY",
    "DEV_ACCOUNT_NAME",
    "Azurite",
    "AzuriteEndpoints",
    "STANDARD_PORTS",
    "azurite_installed",
    "ensure_azurite_installed",
    "ports_in_use",
]

log = logging.getLogger(__name__)

AZURITE_VERSION = "3.37.0"
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
STANDARD_PORTS = (10000, 10001, 10002)
"""Blob, queue, table: the emulator's defaults, where ``UseDevelopmentStorage=true`` points."""
_LOCK_DIR = Path(__file__).with_name("_azurite")
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)")


@dataclass(frozen=True)
class AzuriteEndpoints:
    """Where a started Azurite listens; ``connection_string`` works with all three SDKs."""

    blob: str
    queue: str
    table: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob}/{DEV_ACCOUNT_NAME};"
            f"QueueEndpoint={self.queue}/{DEV_ACCOUNT_NAME};"
            f"TableEndpoint={self.table}/{DEV_ACCOUNT_NAME};"
        )


def _cache_root() -> Path:
    explicit = os.environ.get("DURABLE_AZSTORAGE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "durable-azstorage"


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((_LOCK_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def _install_target() -> Path:
    return _cache_root() / f"azurite-{AZURITE_VERSION}-{_lock_hash()}"


def azurite_installed() -> bool:
    """The pinned Azurite (or ``AZURITE_BIN``) is there: starting it needs no download."""
    override = os.environ.get("AZURITE_BIN")
    return Path(override).exists() if override else (_install_target() / "node_modules" / ".bin" / "azurite").exists()


def ensure_azurite_installed(*, quiet: bool = True) -> Path:
    """Return the path of the pinned ``azurite`` binary, running ``npm ci`` once if needed.

    ``AZURITE_BIN`` overrides everything (for users with a global install). The install goes
    to a temporary folder first and is renamed into place, so an interrupted ``npm ci`` never
    leaves a half-installed emulator behind.
    """
    override = os.environ.get("AZURITE_BIN")
    if override:
        return Path(override)
    target = _install_target()
    binary = target / "node_modules" / ".bin" / "azurite"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigurationError(
            "Azurite is needed but npm was not found; install Node.js 20+ with npm, "
            "or set AZURITE_BIN to an azurite executable"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="azurite-install-", dir=target.parent))
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(_LOCK_DIR / name, staging / name)
    log.info("azurite.install.start", extra={"path": str(target)})
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd, cwd=staging, capture_output=quiet, text=True, check=False
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (result.stderr or "")[-2000:] if quiet else ""
        raise ConfigurationError(f"npm ci for Azurite {AZURITE_VERSION} failed: {detail}")
    try:
        staging.rename(target)
    except OSError:
        # Another process won the race; its install is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
    log.info("azurite.install.done", extra={"path": str(target)})
    return binary


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies (PR_SET_PDEATHSIG).

    ``start_new_session`` keeps a Ctrl-C in the terminal from reaching the emulator before our
    orderly stop; this makes sure an abrupt end of ours (SIGKILL, OOM) still ends it.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def ports_in_use(host: str, ports: tuple[int, ...]) -> list[int]:
    """Which of ``ports`` something already listens on (we try to bind each, then let go)."""
    taken = []
    for port in ports:
        try:
            with socket.create_server((host, port)):
                pass
        except OSError:
            taken.append(port)
    return taken


class Azurite:
    """One Azurite process we started and will stop; nothing else is ever touched.

    ``location=None`` keeps all data in memory (tests); a folder keeps it on disk (demo).
    """

    def __init__(
        self,
        *,
        location: Path | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        binary: Path | None = None,
        ports: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self._location = location
        self._ports = ports
        self._host = host
        self._startup_timeout = startup_timeout
        self._binary = binary
        self._proc: subprocess.Popen[str] | None = None
        self._endpoints: dict[str, str] = {}
        self._ready = threading.Event()
        self._tail: deque[str] = deque(maxlen=50)
        self.endpoints: AzuriteEndpoints | None = None

    @property
    def connection_string(self) -> str:
        if self.endpoints is None:
            raise RuntimeError("Azurite is not running")
        return self.endpoints.connection_string

    def _argv(self, binary: Path) -> list[str]:
        argv = [str(binary), "--silent", "--disableTelemetry"]
        for service, port in zip(("blob", "queue", "table"), self._ports, strict=True):
            argv += [f"--{service}Host", self._host, f"--{service}Port", str(port)]
        if self._location is None:
            argv.append("--inMemoryPersistence")
        else:
            self._location.mkdir(parents=True, exist_ok=True)
            argv += ["--location", str(self._location)]
        return argv

    def start(self) -> AzuriteEndpoints:
        """Launch, wait until blob, queue and table all listen, and return their endpoints."""
        if self._proc is not None:
            raise RuntimeError("Azurite already started")
        binary = self._binary or ensure_azurite_installed()
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self._argv(binary),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        threading.Thread(target=self._pump_output, name="azurite-output", daemon=True).start()
        if not self._ready.wait(self._startup_timeout) or len(self._endpoints) < 3:
            tail = "\n".join(self._tail)
            self.stop()
            raise RuntimeError(f"Azurite did not start within {self._startup_timeout:.0f}s; output:\n{tail}")
        self.endpoints = AzuriteEndpoints(
            blob=self._endpoints["Blob"], queue=self._endpoints["Queue"], table=self._endpoints["Table"]
        )
        log.info("azurite.started", extra={"pid": self._proc.pid, "blob": self.endpoints.blob})
        return self.endpoints

    def _pump_output(self) -> None:
        # Reading on a thread means a silent or chatty Azurite can never block us.
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            self._tail.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                self._endpoints[match.group(1)] = match.group(2)
                if len(self._endpoints) == 3:
                    self._ready.set()
        self._ready.set()  # process ended: wake a waiting start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop our process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        self.endpoints = None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        log.info("azurite.stopped", extra={"pid": proc.pid})

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

