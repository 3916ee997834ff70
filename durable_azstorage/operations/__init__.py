"""Operations tools: ``doctor`` (find and repair a broken hub), ``replay-check`` and history export.

Pure analysis lives apart from storage reads and writes (see each module's docstring).
"""

from .doctor import diagnose, health_findings
from .findings import DoctorReport, Finding, RepairOutcome, RepairResult, Severity
from .hub_snapshot import DoctorOptions

__all__ = [
    "DoctorOptions",
    "DoctorReport",
    "Finding",
    "RepairOutcome",
    "RepairResult",
    "Severity",
    "diagnose",
    "health_findings",
]
