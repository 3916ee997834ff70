"""Functions 1.x runtime alone: CPU per episode against history length, kept executor vs full replay.

    python -m benchmarks.functions_replay [--activities 300]

No storage and no worker: one ``long_sequence`` orchestration (N activities in sequence, the
suite's Functions app code) is driven episode by episode through the pure replay state and
``FunctionsOrchestrationRuntime`` — once with the default cache (the SDK's executor continued
between episodes) and once with ``session_capacity=0`` (the whole history rendered, parsed and
replayed each episode, as the Durable Functions extension does and as this provider did
before). Each episode's thread CPU time is measured (reliable on a loaded machine) and
printed by fifth of the run, with the total. The two runs' episode results are compared too, and
the memory one kept orchestrator holds is measured with ``tracemalloc``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

from durable_azstorage.model import ExecutionStartedEvent, OrchestrationInstance, TaskCompletedEvent
from durable_azstorage.runtimes.base import EpisodeResult
from durable_azstorage.runtimes.functions import FunctionsOrchestrationRuntime
from durable_azstorage.runtimes.state import ReplayState

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _handles() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import azure.durable_functions as df

    def long_sequence(context: Any) -> Any:
        total = 0
        for i in range(context.get_input()):
            total += yield context.call_activity("square", i)
        return total

    return {"long_sequence": df.Orchestrator.create(long_sequence)}


def drive(
    runtime: FunctionsOrchestrationRuntime, activities: int, episodes: int | None = None
) -> tuple[list[tuple[int, float]], list[EpisodeResult]]:
    """Run the orchestration to completion (or ``episodes``); (history length, CPU s) and the result per episode."""
    instance = OrchestrationInstance(instance_id="bench", execution_id="e1")
    history: list[Any] = []
    inbox: list[Any] = [ExecutionStartedEvent(orchestration_instance=instance, name="long_sequence",
                                              input=json.dumps(activities), timestamp=T0)]
    samples: list[tuple[int, float]] = []
    results: list[EpisodeResult] = []
    now = T0
    while inbox and (episodes is None or len(results) < episodes):
        now += timedelta(milliseconds=10)
        state = ReplayState("bench", history)
        plan = state.prepare(inbox, now=now)
        inbox = []
        assert plan.request is not None
        c0 = time.thread_time()
        result = runtime.run_episode_sync(plan.request)
        samples.append((len(plan.request.past_events) + len(plan.request.new_events), time.thread_time() - c0))
        results.append(result)
        outcome = state.apply(plan, result)
        history.extend(outcome.history)
        for message in outcome.work_item_messages:  # the activity, run inline: square(i)
            value = json.loads(json.loads(message.event.input)[0])
            inbox.append(TaskCompletedEvent(task_scheduled_id=message.event.event_id,
                                            result=json.dumps(value * value), timestamp=now))
    return samples, results


def kept_bytes(activities: int) -> int:
    """Memory one kept orchestrator holds after ``activities`` episodes (traced, cache on minus off)."""
    drive(FunctionsOrchestrationRuntime(_handles()), 3, 2)  # imports and first-use caches, outside the measure
    sizes = []
    for capacity in (1000, 0):
        gc.collect()
        tracemalloc.start()
        runtime = FunctionsOrchestrationRuntime(_handles(), session_capacity=capacity)
        drive(runtime, activities + 1, activities)
        gc.collect()
        sizes.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
    return sizes[0] - sizes[1]


def _fifths(samples: list[tuple[int, float]]) -> list[str]:
    size = max(1, len(samples) // 5)
    groups = [samples[i * size:(i + 1) * size] for i in range(4)] + [samples[4 * size:]]
    return [f"{statistics.fmean(c for _, c in g) * 1000:.2f} ms @{g[0][0]}-{g[-1][0]}" for g in groups if g]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.functions_replay")
    parser.add_argument("--activities", type=int, default=300)
    args = parser.parse_args()
    rows = []
    for label, capacity in (("kept executor", 1000), ("full replay", 0)):
        runtime = FunctionsOrchestrationRuntime(_handles(), session_capacity=capacity)
        samples, results = drive(runtime, args.activities)
        rows.append((label, samples, results, runtime))
    (_, _, kept_results, kept), (_, _, full_results, _) = rows
    same = kept_results == full_results
    print(f"long_sequence of {args.activities} activities, Functions 1.x runtime only "
          f"(episodes: {len(kept_results)}; kept executor hits/misses: {kept.sessions.hits}/{kept.sessions.misses}; "
          f"every episode's result equal: {same})")
    for label, samples, _, _ in rows:
        total = sum(c for _, c in samples)
        print(f"  {label:13}  total {total:7.3f} s CPU, {total * 1000 / args.activities:7.2f} ms per activity;"
              f"  per episode by fifth: {' | '.join(_fifths(samples))}")
    kept_kib = kept_bytes(args.activities) / 1024
    print(f"  memory of one kept orchestrator after {args.activities} activities: {kept_kib:.0f} KiB (tracemalloc)")
    if not same:
        raise SystemExit("the kept executor's results differ from the full replay's")


if __name__ == "__main__":
    main()
