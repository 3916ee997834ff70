"""The independent ledger: what the test itself sent and what user code itself recorded.

Nothing here reads the engine's bookkeeping (history, Instances rows) to decide what happened:
events and signals are counted from what the test raised and what the orchestration / entity
returned; activity executions from the append-only file the activities write.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Ledger:
    path: Path
    expected_events: dict[str, list[str]] = field(default_factory=dict)  # instance -> values raised
    expected_ops: dict[str, list[str]] = field(default_factory=dict)  # entity key -> op ids sent
    expected_activity_keys: set[str] = field(default_factory=set)
    kill_recoveries: list[float] = field(default_factory=list)  # seconds until partitions re-owned
    problems: list[str] = field(default_factory=list)

    def executions(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    counts[json.loads(line)["key"]] += 1
        return counts

    def check_outputs(self, outputs: dict[str, Any]) -> None:
        """Every instance's output: expected values, each raised event exactly once."""
        for instance_id, raised in self.expected_events.items():
            output = outputs.get(instance_id)
            if output is None:
                self.problems.append(f"{instance_id}: no output")
                continue
            got = Counter(output["events"])
            want = Counter(raised)
            if got != want:
                self.problems.append(f"{instance_id}: events applied {dict(got)} but raised {dict(want)}")

    def check_entities(self, states: dict[str, dict[str, Any]]) -> None:
        """Each entity operation (client signal, orchestration signal, locked call) applied once."""
        for key, ops in self.expected_ops.items():
            applied = Counter(states.get(key, {}).get("ops", []))
            for op in ops:
                if applied[op] != 1:
                    self.problems.append(f"entity {key}: operation {op} applied {applied[op]} times")
            extra = set(applied) - set(ops)
            if extra:
                self.problems.append(f"entity {key}: unexpected operations {sorted(extra)}")

    def activity_duplicates(self) -> tuple[int, int]:
        """(executions beyond the first, keys never executed) — at-least-once allows the former."""
        counts = self.executions()
        missing = [key for key in self.expected_activity_keys if counts[key] == 0]
        for key in missing:
            self.problems.append(f"activity {key} never ran")
        # A flaky activity runs twice by design (its first attempt fails); anything more is a duplicate.
        duplicates = sum(
            max(0, counts[key] - (2 if key.endswith(":flaky") else 1)) for key in self.expected_activity_keys
        )
        return duplicates, len(missing)
