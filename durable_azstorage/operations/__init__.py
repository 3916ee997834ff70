"""Operations tools: ``doctor`` (find and repair a broken hub), ``replay-check`` and history export.

Pure analysis lives apart from storage reads and writes (see each module's docstring).
"""

from .doctor import diagnose, diagnose_hub, health_findings
from .findings import DoctorReport, Finding, RepairOutcome, RepairResult, Severity
from .history_export import RecordedHistory, export_history, read_history_file
from .hub_snapshot import DoctorOptions
from .replay_check import DurableTaskReplayer, FunctionsReplayer, ReplayVerdict, replay_instances

__all__ = [
    "DoctorOptions",
    "DoctorReport",
    "DurableTaskReplayer",
    "Finding",
    "FunctionsReplayer",
    "RecordedHistory",
    "ReplayVerdict",
    "RepairOutcome",
    "RepairResult",
    "Severity",
    "diagnose",
    "diagnose_hub",
    "export_history",
    "health_findings",
    "read_history_file",
    "replay_instances",
]
