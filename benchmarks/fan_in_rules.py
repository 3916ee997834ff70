"""The inbound rules of one large fan-in: process CPU to classify N answers against N scheduled tasks.

    python -m benchmarks.fan_in_rules [--answers 3000]

No storage, no runtime: a history with N ``TaskScheduled`` events and one batch of N
``TaskCompleted`` answers, classified by ``ReplayState.prepare`` (duplicate and out-of-order
checks, timer hops). Before ``runtimes/rules.py`` counted the history once per episode
(``HistoryLedger``), each answer rescanned the history: N·N. Time two checkouts side by side with
``farm-bench --vs`` (whole process), or read the printed CPU of the call alone.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from durable_azstorage.model import (
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    TaskCompletedEvent,
    TaskScheduledEvent,
)
from durable_azstorage.runtimes.state import ReplayState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=3000)
    n = parser.parse_args().answers
    now = datetime.now(timezone.utc)
    started = ExecutionStartedEvent(name="fan_out", orchestration_instance=OrchestrationInstance(instance_id="i"))
    past: list[HistoryEvent] = [OrchestratorStartedEvent(timestamp=now), started]
    past += [TaskScheduledEvent(event_id=i, name="work") for i in range(n)]
    past.append(OrchestratorCompletedEvent())
    answers = [TaskCompletedEvent(task_scheduled_id=i, result="1") for i in range(n)]
    cpu = time.process_time()
    plan = ReplayState("i", past).prepare(answers, now=now)
    cpu = time.process_time() - cpu
    assert len(plan.accepted) == n, "every answer accepted"
    print(f"{n} answers against {len(past)} history events: {cpu * 1000:.1f} ms CPU in prepare")


if __name__ == "__main__":
    main()
