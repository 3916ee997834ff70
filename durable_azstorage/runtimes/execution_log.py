"""The host's story, one line per step, as ``func start`` tells it.

Wraps any orchestration and activity runtime and logs, on the ``durable_azstorage.host``
logger at INFO:

* ``Executing 'Functions.say_hello' (Reason='Activity scheduled by instance abc', Id=…)`` and
  ``Executed 'Functions.say_hello' (Succeeded, Id=…, Duration=12ms)`` per function execution;
* ``Orchestration 'hello_sequence' started (instance abc)`` / ``completed`` / ``failed: …`` /
  ``continued as new`` when an episode begins or ends an execution.

The CLI shows that logger by default; a library user sees it when they enable it. When it is
disabled the cost is one ``isEnabledFor`` check per execution.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from ..model import EventType, ExecutionStartedEvent, OrchestrationStatus
from .actions import CompleteOrchestration
from .base import ActivityResult, ActivityRuntime, EpisodeRequest, EpisodeResult, OrchestrationRuntime

__all__ = ["HOST_LOGGER", "LoggedActivityRuntime", "LoggedOrchestrationRuntime"]

HOST_LOGGER = "durable_azstorage.host"
log = logging.getLogger(HOST_LOGGER)

_ENDINGS = {
    OrchestrationStatus.Completed: "completed",
    OrchestrationStatus.Failed: "failed",
    OrchestrationStatus.Terminated: "terminated",
    OrchestrationStatus.ContinuedAsNew: "continued as new",
}


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _orchestration_name(request: EpisodeRequest) -> str:
    for event in (*request.past_events, *request.new_events):
        if isinstance(event, ExecutionStartedEvent):
            return event.name or "?"
    return "?"


class LoggedOrchestrationRuntime:
    """An orchestration runtime that tells what it runs (see the module docstring)."""

    def __init__(self, inner: OrchestrationRuntime) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # other capabilities of the wrapped runtime
        return getattr(self.inner, name)

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        if not log.isEnabledFor(logging.INFO):
            return await self.inner.run_episode(request)
        name = _orchestration_name(request)
        fields = {"function_name": name, "instance_id": request.instance_id, "execution_id": request.execution_id}
        if any(e.event_type == EventType.ExecutionStarted for e in request.new_events):
            log.info("Orchestration '%s' started (instance %s)", name, request.instance_id, extra=fields)
        invocation = str(uuid.uuid4())
        reason = f"OrchestrationTrigger: {len(request.new_events)} new event(s) for instance {request.instance_id}"
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, invocation, extra=fields)
        started = time.perf_counter()
        try:
            result = await self.inner.run_episode(request)
        except BaseException:
            log.info("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", name, invocation, _ms(started),
                     extra=fields)
            raise
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", name, invocation, _ms(started),
                 extra=fields)
        for action in result.actions:
            if isinstance(action, CompleteOrchestration):
                _log_ending(name, request.instance_id, action, fields)
        return result


def _log_ending(name: str, instance_id: str, action: CompleteOrchestration, fields: dict[str, Any]) -> None:
    ending = _ENDINGS.get(action.status, action.status.name)
    if action.status is OrchestrationStatus.Failed:
        details = action.failure_details
        why = f"{details.error_type}: {details.error_message}" if details is not None else "no details"
        log.warning("Orchestration '%s' failed (instance %s): %s", name, instance_id, why, extra=fields)
    else:
        log.info("Orchestration '%s' %s (instance %s)", name, ending, instance_id, extra=fields)


class LoggedActivityRuntime:
    """An activity runtime that tells what it runs (see the module docstring)."""

    def __init__(self, inner: ActivityRuntime) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run_activity(self, name: str, input: str | None, *, instance_id: str, task_id: int) -> ActivityResult:
        if not log.isEnabledFor(logging.INFO):
            return await self.inner.run_activity(name, input, instance_id=instance_id, task_id=task_id)
        fields = {"function_name": name, "instance_id": instance_id, "task_id": task_id}
        invocation = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='Activity scheduled by instance %s', Id=%s)", name, instance_id,
                 invocation, extra=fields)
        started = time.perf_counter()
        result = await self.inner.run_activity(name, input, instance_id=instance_id, task_id=task_id)
        if result.is_failure and result.failure_details is not None:
            details = result.failure_details
            log.warning("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms): %s: %s", name, invocation,
                        _ms(started), details.error_type, details.error_message, extra=fields)
        else:
            log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", name, invocation, _ms(started),
                     extra=fields)
        return result
