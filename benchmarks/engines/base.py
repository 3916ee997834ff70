"""What a workload needs from an engine, and the replay probe shared by durabletask-based ones."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = ["Completion", "Engine", "ReplayProbe"]


@dataclass(frozen=True)
class Completion:
    """A finished instance; ``seconds`` is created → completed as the engine recorded it."""

    instance_id: str
    ok: bool
    output: Any
    seconds: float | None


class Engine(ABC):
    """One engine under test, started once per child process and shared by its workloads."""

    name: str = "engine"
    server_pid: int | None = None  # the out-of-process store (Azurite, PostgreSQL), for its CPU
    # A new engine (and store namespace) per workload, removed afterwards: Azurite slows down as
    # its tables grow, and one workload's leftovers must not bill the next one.
    fresh_per_workload: bool = False

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def cleanup(self) -> None:
        """Remove what the engine stored (after :meth:`stop`, outside any measurement)."""
        return None

    def unsupported(self, workload: str) -> str | None:
        """Why this engine cannot run ``workload`` (shown as "n/a"), or None."""
        return None

    @abstractmethod
    async def start_many(self, orchestrator: str, inputs: list[Any]) -> list[str]: ...

    @abstractmethod
    async def wait_all(self, instance_ids: list[str], timeout: float) -> list[Completion]: ...

    @abstractmethod
    async def wait_fast(self, instance_id: str, timeout: float) -> Completion:
        """Wait with the finest observation this engine offers (latency workload)."""

    @abstractmethod
    async def raise_event(self, instance_id: str, name: str, data: Any) -> None: ...

    async def signal_entity(self, entity: str, key: str, operation: str, data: Any) -> None:
        raise NotImplementedError

    async def entity_state(self, entity: str, key: str) -> Any:
        raise NotImplementedError

    # Storage accounting: None when the engine has nothing comparable.
    def reset_transactions(self) -> None:
        return None

    def transactions(self) -> dict[str, Counter[tuple[str, str]]] | None:
        """Counts by ``(service, operation)`` per role (``engine``, ``monitor``)."""
        return None

    def failed_requests(self) -> dict[str, int] | None:
        """Requests answered with an error status, by operation and status (billed all the same)."""
        return None

    def transaction_label(self) -> str:
        return "storage transactions"


class ReplayProbe:
    """Times every orchestration episode (one replay) with its history length.

    ``site="executor"`` wraps ``durabletask.worker._OrchestrationExecutor.execute``, where the
    durabletask SDK worker replays; ``site="runtime"`` wraps durable_azstorage's
    ``DurableTaskOrchestrationRuntime.run_episode_sync`` (which may continue a cached
    orchestrator instead of replaying everything, and also converts events and actions);
    ``site="functions"`` wraps ``FunctionsOrchestrationRuntime.run_episode_sync`` (Functions 1.x
    apps: context JSON, the SDK's replay or kept executor, the action shim). Thread
    CPU time is recorded next to wall time: it is what the episode itself costs, whatever else
    the (shared) machine is doing.
    """

    def __init__(self, site: str = "executor") -> None:
        self.site = site
        self.samples: list[tuple[str, int, float, float]] = []  # instance, events, wall s, cpu s
        self.batches: list[tuple[str, float]] = []  # instance, wall s of a whole work item (load, replay, commit)
        self._installed = False

    def _record(self, original: Any, instance_of: Any, length_of: Any) -> Any:
        samples = self.samples

        def timed(owner: Any, *args: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return original(owner, *args)
            finally:
                samples.append((instance_of(args), length_of(args), time.perf_counter() - t0, time.thread_time() - c0))

        return timed

    def install(self) -> ReplayProbe:
        if self._installed:
            return self
        if self.site in ("runtime", "functions"):
            from durable_azstorage.runtimes import durabletask as runtime
            from durable_azstorage.runtimes import functions as functions_runtime

            cls: Any = (
                runtime.DurableTaskOrchestrationRuntime
                if self.site == "runtime"
                else functions_runtime.FunctionsOrchestrationRuntime
            )
            cls.run_episode_sync = self._record(
                cls.run_episode_sync,
                lambda a: a[0].instance_id,
                lambda a: len(a[0].past_events) + len(a[0].new_events),
            )
            from durable_azstorage.worker.orchestrations import OrchestrationProcessor

            process = OrchestrationProcessor.process
            batches = self.batches

            async def timed_process(owner: Any, instance_id: str, messages: Any, *rest: Any) -> None:
                t0 = time.perf_counter()
                try:
                    await process(owner, instance_id, messages, *rest)
                finally:
                    batches.append((instance_id, time.perf_counter() - t0))

            OrchestrationProcessor.process = timed_process  # type: ignore[method-assign, assignment]
        else:
            from durabletask import worker as dt_worker

            executor: Any = dt_worker._OrchestrationExecutor
            executor.execute = self._record(executor.execute, lambda a: a[0], lambda a: len(a[1]) + len(a[2]))
        self._installed = True
        return self

    def batches_for(self, instance_id: str) -> list[float]:
        return [wall for iid, wall in self.batches if iid == instance_id]

    def for_instance(self, instance_id: str) -> list[tuple[int, float, float]]:
        return [(n, wall, cpu) for iid, n, wall, cpu in self.samples if iid == instance_id]
