"""What ``doctor`` reports: findings (a kind of problem, how many, example ids) and repairs.

Plain data, JSON-ready through :meth:`DoctorReport.to_dict`, so the CLI, the dashboard and
scripts all read the same shape. Finding codes are stable: scripts may match on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["MAX_EXAMPLES", "DoctorReport", "Finding", "RepairOutcome", "RepairResult", "Severity"]

MAX_EXAMPLES = 5
"""Example ids shown per finding; ``items`` keeps up to :data:`MAX_ITEMS` for repairs and --json."""
MAX_ITEMS = 1000


class Severity(str, enum.Enum):
    """``error``: work is stuck or lost until fixed; ``warning``: will hurt; ``info``: worth knowing."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class RepairOutcome(str, enum.Enum):
    FIXED = "fixed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class Finding:
    """One kind of problem found in a hub, with every affected id (capped) and what to do."""

    code: str
    severity: Severity
    title: str
    advice: str
    repair: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, item: dict[str, Any]) -> None:
        self.count += 1
        if len(self.items) < MAX_ITEMS:
            self.items.append(item)

    @property
    def examples(self) -> list[str]:
        return [str(item.get("id", "")) for item in self.items[:MAX_EXAMPLES]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "title": self.title,
            "count": self.count,
            "examples": self.examples,
            "repair": self.repair,
            "advice": self.advice,
            "items": self.items,
        }


@dataclass(frozen=True)
class RepairResult:
    """One repair applied (or not) to one target; ``detail`` says why when skipped or failed."""

    repair: str
    target: str
    outcome: RepairOutcome
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"repair": self.repair, "target": self.target, "outcome": self.outcome.value, "detail": self.detail}


@dataclass
class DoctorReport:
    """Everything one ``doctor`` run found (and, with ``--repair``, did)."""

    task_hub: str
    scanned_at: datetime
    partition_count: int | None
    scanned: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    repairs: list[RepairResult] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is not Severity.INFO and f.count]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def finding(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "taskHub": self.task_hub,
            "scannedAt": self.scanned_at.isoformat().replace("+00:00", "Z"),
            "partitionCount": self.partition_count,
            "healthy": self.healthy,
            "scanned": dict(self.scanned),
            "findings": [f.to_dict() for f in self.findings if f.count],
            "repairs": [r.to_dict() for r in self.repairs],
            "limits": list(self.limits),
        }
