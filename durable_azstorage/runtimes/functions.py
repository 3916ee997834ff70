"""Runtimes for Azure Functions Python apps written with azure-functions-durable 1.x.

Orchestrators: the function an app registers is ``Orchestrator.create(fn)``'s ``handle``: it
takes the extension's context JSON and returns the cumulative action list (docs/functions-apps.md).
We render that context from our history (:mod:`.functions_context`), call the handle, and let
:mod:`.functions_actions` number the actions the way DTFx behind the extension's shim does, so a
hub written here replays on the real Functions host and the other way round.

Activities: called as the Python worker calls them — the trigger binding's parameter gets the
input decoded with ``df_loads`` (the raw text when it is not JSON), the return value is encoded
with ``df_dumps`` — plus the extension's built-in ``call_http`` activity, a real HTTP request
that follows ``202 Accepted`` + ``Location`` polling as the Durable Functions HTTP feature does.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
from azure.functions._durable_functions import df_dumps, df_loads

from ..model import (
    ExecutionStartedEvent,
    FailureDetails,
    HistoryEvent,
    OrchestrationStatus,
    OrchestratorStartedEvent,
)
from .actions import Action, CompleteOrchestration
from .base import ActivityResult, EpisodeRequest, EpisodeResult
from .entities_orchestration import EntityMessageEncoder
from .functions_actions import HTTP_ACTIVITY, NonDeterminismError, completion, top_level_actions
from .functions_entities import entity_send_event
from .functions_replay import SessionCache

__all__ = ["ActivityFunction", "FunctionsActivityRuntime", "FunctionsOrchestrationRuntime"]

_log = logging.getLogger(__name__)


class FunctionsOrchestrationRuntime:
    """Runs ``Orchestrator.create`` handles by orchestrator name (case-insensitive, as Functions)."""

    entity_request_ids_follow_clock = False
    """Entity request ids come from instance, execution and action id (functions_entities), not
    from the episode clock: a re-run names them the same without a recorded clock
    (worker/episode_clock.py)."""

    def __init__(self, orchestrators: Mapping[str, Callable[[str], str]], *, session_capacity: int = 1000) -> None:
        self._handles = {name.lower(): handle for name, handle in orchestrators.items()}
        # Suspended orchestrators kept between episodes (:mod:`.functions_replay`); 0: full replays.
        self.sessions = SessionCache(session_capacity)

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        return self.run_episode_sync(request)

    def run_episode_sync(self, request: EpisodeRequest) -> EpisodeResult:
        """Deterministic and I/O-free, as orchestrator code must be."""
        name = _orchestrator_name(request.past_events, request.new_events)
        handle = self._handles.get(name.lower())
        if handle is None:
            known = ", ".join(sorted(self._handles)) or "none"
            return _failed(-1, "FunctionNotFound", f"The function '{name}' doesn't exist (registered: {known}).")
        episode = self.sessions.run(
            handle, request.instance_id, request.execution_id, request.past_events, request.new_events
        )
        state, error = episode.sdk.state, episode.sdk.error
        now = _episode_time(request.new_events)
        try:
            shim, entity_actions = episode.walk.translate(top_level_actions(state), now)
        except NonDeterminismError as exc:
            self.sessions.discard(request.instance_id)
            _log.warning("runtime.functions_nondeterminism", extra={"instance_id": request.instance_id})
            return _failed(-1, "NonDeterministicOrchestrationException", str(exc))
        actions: list[Action] = list(shim.actions)
        if entity_actions:
            encoder = EntityMessageEncoder(
                request.instance_id, request.execution_id, request.past_events, request.new_events
            )
            actions += [entity_send_event(a, action_id, encoder, now=now) for action_id, a in entity_actions]
        actions.sort(key=lambda a: a.id)
        message = None if error is None else f"Orchestrator function '{name}' failed: {error}"
        done = completion(state, shim.next_id, error=message)
        if done is not None:
            actions.append(done)
        custom = state.get("customStatus")
        return EpisodeResult(actions=tuple(actions), custom_status=None if custom is None else json.dumps(custom))


def _failed(action_id: int, error_type: str, message: str) -> EpisodeResult:
    failure = FailureDetails(error_type=error_type, error_message=message, is_non_retriable=True)
    return EpisodeResult(
        actions=(CompleteOrchestration(id=action_id, status=OrchestrationStatus.Failed, failure_details=failure),)
    )


def _orchestrator_name(past: Sequence[HistoryEvent], new: Sequence[HistoryEvent]) -> str:
    # ExecutionStarted is near the start (after the first OrchestratorStarted): no whole-list copy.
    started = next((e for e in itertools.chain(past, new) if isinstance(e, ExecutionStartedEvent)), None)
    return (started.name if started is not None else None) or ""


def _episode_time(new_events: Sequence[HistoryEvent]) -> datetime:
    started = next((e for e in new_events if isinstance(e, OrchestratorStartedEvent)), None)
    return started.timestamp if started is not None else datetime.now(timezone.utc)


# ---------------------------------------------------------------------------- activities
@dataclass(frozen=True)
class ActivityFunction:
    """A user activity and the name of its ``activityTrigger`` parameter."""

    function: Callable[..., Any]
    binding_name: str


class FunctionsActivityRuntime:
    """Runs activities by name (case-insensitive); sync ones in the default thread pool."""

    def __init__(
        self, activities: Mapping[str, ActivityFunction], *, http_timeout: float = 600.0, legacy_input: bool = True
    ) -> None:
        self._activities = {name.lower(): a for name, a in activities.items()}
        self._http_timeout = http_timeout
        # 1.x: the input is a one-item array of the SDK's JSON; 2.x (durabletask) sends the JSON itself.
        self._unwrap = _unwrap if legacy_input else _as_is

    async def run_activity(
        self, name: str, input: str | None, *, instance_id: str, task_id: int
    ) -> ActivityResult:
        try:
            if name == HTTP_ACTIVITY:
                return ActivityResult(result=await self._http(_unwrap(input)))
            activity = self._activities.get(name.lower())
            if activity is None:
                known = ", ".join(sorted(self._activities)) or "none"
                raise LookupError(f"The function '{name}' doesn't exist, is disabled, or is not an activity "
                                  f"function (activities: {known}).")
            value = _decode(self._unwrap(input))
            result = await _invoke(activity, value)
            return ActivityResult(result=df_dumps(result))
        except Exception as exc:  # user code: reported to the orchestration, never raised
            _log.debug("runtime.functions_activity_failed", extra={"activity": name, "instance_id": instance_id})
            return ActivityResult(failure_details=FailureDetails(
                error_type=type(exc).__name__,
                error_message=str(exc),
                stack_trace="".join(traceback.format_exception(exc)).strip(),
            ))

    async def _http(self, raw: str | None) -> str:
        request = json.loads(raw or "{}")
        if isinstance(request, str):
            request = json.loads(request)
        timeout = aiohttp.ClientTimeout(total=self._http_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            status, headers, content = await _http_with_polling(session, request)
        return json.dumps({"statusCode": status, "headers": headers, "content": content})


async def _http_with_polling(
    session: aiohttp.ClientSession, request: Mapping[str, Any]
) -> tuple[int, dict[str, str], str]:
    """One request; while the answer is 202 with a Location, GET it after Retry-After seconds."""
    method = str(request.get("method") or "GET").upper()
    uri = str(request.get("uri") or "")
    headers = {str(k): str(v[0] if isinstance(v, list) else v) for k, v in (request.get("headers") or {}).items()}
    body = request.get("content")
    async with session.request(method, uri, headers=headers, data=body) as response:
        status, out_headers, content = response.status, dict(response.headers), await response.text()
    while status == 202 and "Location" in out_headers:
        await asyncio.sleep(_retry_after(out_headers))
        async with session.get(out_headers["Location"], headers=headers) as response:
            status, out_headers, content = response.status, dict(response.headers), await response.text()
    return status, out_headers, content


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return min(max(float(headers.get("Retry-After", "1")), 0.0), 60.0)
    except ValueError:
        return 1.0


def _as_is(raw: str | None) -> str | None:
    return raw


def _unwrap(raw: str | None) -> str | None:
    """The extension stores activity input as a one-item array of the SDK's JSON text."""
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(parsed, list) and len(parsed) == 1 and (parsed[0] is None or isinstance(parsed[0], str)):
        return parsed[0]
    return raw


def _decode(text: str | None) -> Any:
    """What the Python worker's ``ActivityTriggerConverter`` hands the function."""
    if text is None:
        return None
    try:
        return df_loads(text)
    except Exception:
        return text


async def _invoke(activity: ActivityFunction, value: Any) -> Any:
    kwargs = {activity.binding_name: value}
    if inspect.iscoroutinefunction(activity.function):
        return await activity.function(**kwargs)
    result = await asyncio.to_thread(activity.function, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result
