"""Process-level probes: CPU seconds, peak RSS per workload, CPU of a server process, percentiles.

Peak RSS is the kernel's high-water mark (``VmHWM``), reset before each workload by writing
``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), so each workload reports its own peak, not
the process's lifetime maximum. Where that is not possible, ``ru_maxrss`` is reported and
flagged as cumulative.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessProbe", "ServerCpu", "percentiles"]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class ProcessProbe:
    """Wall clock, process CPU (all threads) and peak RSS between ``start()`` and ``stop()``."""

    wall: float = 0.0
    cpu: float = 0.0
    peak_rss_mib: float = 0.0
    rss_is_per_workload: bool = False

    def start(self) -> ProcessProbe:
        self.rss_is_per_workload = _reset_peak_rss()
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()
        return self

    def stop(self) -> ProcessProbe:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._c0
        self.peak_rss_mib = _peak_rss_mib()
        return self


class ServerCpu:
    """CPU seconds of an out-of-process server (Azurite's node, PostgreSQL's postmaster + backends).

    Reads ``/proc/<pid>/stat``: user + system time of the process and of its live children,
    plus the children-waited-for totals, so backends that exited are still counted.
    """

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    @staticmethod
    def _stat(pid: int) -> tuple[int, list[str]] | None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = text[text.rindex(")") + 2 :].split()
        return int(fields[1]), fields  # ppid, fields from state onwards

    def seconds(self) -> float | None:
        if self.pid is None:
            return None
        own = self._stat(self.pid)
        if own is None:
            return None
        _, f = own
        ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            child = self._stat(int(entry))
            if child is not None and child[0] == self.pid:
                cf = child[1]
                ticks += int(cf[11]) + int(cf[12])
        return ticks / _CLK_TCK


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50/p95/p99/max in milliseconds (inclusive quantiles; fine for 100 samples)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        only = ordered[0] * 1000
        return {"p50": only, "p95": only, "p99": only, "max": only, "n": 1}
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(q[49] * 1000, 1),
        "p95": round(q[94] * 1000, 1),
        "p99": round(q[98] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }
