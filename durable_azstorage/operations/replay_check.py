"""``replay-check``: would the code about to be deployed replay the histories of running instances?

Replays each recorded history against the new orchestrator code, in memory (storage is only read),
through the same engines the worker uses: the durabletask SDK's own executor (which raises
``NonDeterminismError`` on a history mismatch) and, for Functions apps, the
``Orchestrator.create`` handle plus the action shim that already detects non-determinism
(:mod:`durable_azstorage.runtimes.functions_actions`).

For durabletask orchestrators the source line of the divergent call is captured where the
action is created (the context's pending-action table records the first frame outside the SDK
and this package), so the report points at the line that changed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from .. import model as m
from ..connection import StorageAccount
from ..errors import InstanceNotFoundError, TaskHubNotFoundError
from ..runtimes import durabletask as dt_runtime
from ..runtimes.base import Registry
from ..runtimes.functions_actions import NonDeterminismError, translate_actions
from ..runtimes.functions_context import context_json
from ..runtimes.functions_replay import call_sdk
from ..storage import TaskHubStorage
from ..storage.history_store import HistoryLoad

__all__ = [
    "DurableTaskReplayer",
    "FunctionsReplayer",
    "ReplayVerdict",
    "Replayer",
    "describe_event",
    "replay_instances",
]

DEFAULT_STATUSES = (m.OrchestrationStatus.Running, m.OrchestrationStatus.Pending, m.OrchestrationStatus.Suspended)
_SKIP_DIRS = (os.path.dirname(os.path.abspath(dt_runtime.dt_worker.__file__)) + os.sep,)
"""The durabletask SDK's own frames; the user's line is the first frame outside it and us."""
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True)
class ReplayVerdict:
    """One instance's result. ``verdict``: deterministic, divergent, failed, missing or no-history."""

    instance_id: str
    name: str | None
    verdict: str
    events: int
    message: str = ""
    recorded: str | None = None
    new: str | None = None
    source: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.verdict in ("deterministic", "no-history")

    def to_dict(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id, "name": self.name, "verdict": self.verdict, "events": self.events,
            "message": self.message, "recorded": self.recorded, "new": self.new, "source": self.source,
        }


class Replayer:
    """What :func:`check` needs of an engine: replay one history, say how it went."""

    def knows(self, name: str) -> bool:
        raise NotImplementedError

    def replay(self, instance_id: str, name: str, events: Sequence[m.HistoryEvent]) -> ReplayVerdict:
        raise NotImplementedError

    def check(self, instance_id: str, events: Sequence[m.HistoryEvent]) -> ReplayVerdict:
        started = next((e for e in events if isinstance(e, m.ExecutionStartedEvent)), None)
        if started is None:
            return ReplayVerdict(instance_id, None, "no-history", 0, "not started yet: nothing to replay")
        name = started.name or ""
        if not self.knows(name):
            return ReplayVerdict(instance_id, name, "missing", len(events),
                                 f"the new code has no orchestrator named {name!r}: this instance could not continue")
        return self.replay(instance_id, name, events)


def describe_event(event: m.HistoryEvent) -> str:
    """A history event as the call that produced it, e.g. ``call_activity('charge') #1``."""
    name = getattr(event, "name", None)
    call = {
        m.EventType.TaskScheduled: "call_activity",
        m.EventType.SubOrchestrationInstanceCreated: "call_sub_orchestrator",
        m.EventType.TimerCreated: "create_timer",
        m.EventType.EventSent: "send_event",
    }.get(event.event_type, event.event_type.name)
    return f"{call}({name!r}) #{event.event_id}" if name else f"{call}() #{event.event_id}"


# --------------------------------------------------------------------------- durabletask
def _user_frame() -> str | None:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_SKIP_DIRS) and not filename.startswith(_PACKAGE_DIR):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class _TracedActions(dict[int, Any]):
    """The context's pending-action table, remembering each action and the user line that made it."""

    def __init__(self, seen: dict[int, tuple[Any, str | None]]) -> None:
        super().__init__()
        self._seen = seen

    def __setitem__(self, key: int, value: Any) -> None:
        self._seen[key] = (value, _user_frame())
        super().__setitem__(key, value)


def _describe_action(action: Any) -> str:
    kind = action.WhichOneof("orchestratorActionType")
    if kind == "scheduleTask":
        text = f"call_activity({action.scheduleTask.name!r})"
    elif kind == "createSubOrchestration":
        text = f"call_sub_orchestrator({action.createSubOrchestration.name!r})"
    elif kind == "createTimer":
        text = "create_timer()"
    elif kind == "sendEvent":
        text = f"send_event({action.sendEvent.name!r})"
    else:
        text = str(kind)
    return f"{text} #{action.id}"


class DurableTaskReplayer(Replayer):
    """Replays with the durabletask SDK's executor, exactly as the worker does (no timers split)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._runtime = dt_runtime.DurableTaskOrchestrationRuntime(registry, sticky_capacity=0)

    def knows(self, name: str) -> bool:
        return name in self._registry.orchestrators

    def replay(self, instance_id: str, name: str, events: Sequence[m.HistoryEvent]) -> ReplayVerdict:
        return self.run(instance_id, name, events)[0]

    def run(self, instance_id: str, name: str, events: Sequence[m.HistoryEvent]) -> tuple[ReplayVerdict, Any]:
        """The verdict and the SDK context after the replay (its pending actions are the new ones)."""
        executor = self._runtime._new_executor()
        executor._orchestration_name = name
        ctx = self._runtime._new_context(instance_id)
        seen: dict[int, tuple[Any, str | None]] = {}
        ctx._pending_actions = _TracedActions(seen)
        ctx._is_replaying = True
        pairs = [(e, p) for e, p in ((e, dt_runtime.to_pb_event(e)) for e in events) if p is not None]
        for index, (event, pb_event) in enumerate(pairs):
            try:
                executor.process_event(ctx, pb_event)
            except dt_runtime.dt_task.NonDeterminismError as exc:
                action, line = seen.get(event.event_id, (None, None))
                return ReplayVerdict(
                    instance_id, name, "divergent", len(events), str(exc),
                    recorded=describe_event(event),
                    new=_describe_action(action) if action is not None else "nothing (the code no longer makes it)",
                    source=line or _paused_at(ctx), exception=exc,
                ), ctx
            except Exception as exc:  # user code raised while replaying: the new code cannot continue
                return ReplayVerdict(
                    instance_id, name, "failed", len(events),
                    f"the orchestrator raised {type(exc).__name__}: {exc} while replaying event #{index}",
                    recorded=describe_event(event), source=_traceback_line(exc), exception=exc,
                ), ctx
        return ReplayVerdict(instance_id, name, "deterministic", len(events)), ctx


def _paused_at(ctx: Any) -> str | None:
    generator = getattr(ctx, "_generator", None)
    frame = getattr(generator, "gi_frame", None)
    return None if frame is None else f"{os.path.abspath(frame.f_code.co_filename)}:{frame.f_lineno}"


def _traceback_line(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if not filename.startswith(_SKIP_DIRS) and not filename.startswith(_PACKAGE_DIR):
            line = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return line


# --------------------------------------------------------------------------- Functions apps
_SCHEDULING = (m.TaskScheduledEvent, m.TimerCreatedEvent, m.SubOrchestrationInstanceCreatedEvent, m.EventSentEvent)

class FunctionsReplayer(Replayer):
    """Replays through ``Orchestrator.create`` handles and the worker's action shim."""

    def __init__(self, orchestrators: Mapping[str, Callable[[str], str]]) -> None:
        self._handles = {name.lower(): handle for name, handle in orchestrators.items()}

    def knows(self, name: str) -> bool:
        return name.lower() in self._handles

    def replay(self, instance_id: str, name: str, events: Sequence[m.HistoryEvent]) -> ReplayVerdict:
        execution_id = next(
            (e.orchestration_instance.execution_id for e in events
             if isinstance(e, m.ExecutionStartedEvent) and e.orchestration_instance), None,
        ) or ""
        handle = self._handles[name.lower()]
        sdk = call_sdk(lambda: handle(context_json(instance_id, list(events), [])))
        state, error = sdk.state, sdk.error
        now = events[-1].timestamp
        try:
            shim, _ = translate_actions(state, events, instance_id=instance_id, execution_id=execution_id, now=now)
        except NonDeterminismError as exc:
            return ReplayVerdict(instance_id, name, "divergent", len(events), str(exc),
                                 recorded=exc.recorded, new=exc.new)
        if error is not None:
            return ReplayVerdict(instance_id, name, "failed", len(events), f"the orchestrator raised {error}")
        dropped = sorted((e for e in events if isinstance(e, _SCHEDULING) and e.event_id >= shim.next_id),
                         key=lambda e: e.event_id)
        if dropped:
            first = dropped[0]
            recorded = f"{type(first).__name__.removesuffix('Event')} {getattr(first, 'name', '') or ''}".strip()
            return ReplayVerdict(
                instance_id, name, "divergent", len(events),
                f"history has {len(dropped)} call(s) from #{first.event_id} on that the new code no longer makes",
                recorded=f"{recorded} #{first.event_id}", new="nothing (the code no longer makes it)",
            )
        return ReplayVerdict(instance_id, name, "deterministic", len(events))


# --------------------------------------------------------------------------- storage (read only)
async def replay_instances(
    account: StorageAccount,
    task_hub: str,
    replayer: Replayer,
    *,
    instance_ids: Sequence[str] = (),
    statuses: Sequence[m.OrchestrationStatus] = DEFAULT_STATUSES,
    progress: Callable[[str], None] = lambda _: None,
) -> list[ReplayVerdict]:
    """Replay the named instances, or every orchestration (not entity) in ``statuses``; reads only."""
    verdicts: list[ReplayVerdict] = []
    async with await TaskHubStorage.discover(account, task_hub) as hub:
        try:
            ids = list(instance_ids) or [
                state.instance_id
                async for state in hub.instances.query_all(m.InstanceQuery.of(
                    runtime_status=statuses, exclude_entities=True, fetch_input=False, fetch_output=False
                ))
            ]
        except ResourceNotFoundError as exc:
            raise TaskHubNotFoundError(f"no task hub {task_hub!r} in this account; check --task-hub-name") from exc
        for n, instance_id in enumerate(ids, 1):
            progress(f"{n}/{len(ids)} {instance_id}")
            load = await _load_history(hub, task_hub, instance_id)
            if not load.events and instance_ids and await hub.instances.get(instance_id) is None:
                raise InstanceNotFoundError(f"no instance {instance_id!r} in task hub {task_hub!r}")
            verdicts.append(replayer.check(instance_id, load.events))
    return verdicts


async def _load_history(hub: TaskHubStorage, task_hub: str, instance_id: str) -> HistoryLoad:
    try:
        return await hub.history.load(instance_id)
    except ResourceNotFoundError as exc:
        raise TaskHubNotFoundError(f"no task hub {task_hub!r} in this account; check --task-hub-name") from exc
