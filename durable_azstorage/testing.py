"""Turn a production history into a unit test: replay an exported history against an orchestrator.

``durable-azstorage export-history --id ID --out incident.json`` writes the history; a plain
pytest test then checks what the (fixed) orchestrator code does with it::

    from durable_azstorage.testing import replay

    def test_order_42_no_longer_fails():
        result = replay(order, "tests/incidents/order-42.json")
        assert result.deterministic               # the fix replays the recorded history
        assert result.status.name == "Completed"  # ...and now completes
        assert result.output == {"charged": 42}

Replays run the durabletask SDK's own executor (as the worker does), in memory: no storage, no
activities run. ``result.actions`` are what the code does *next*, after the recorded events
(activities it schedules, timers, the completion). For an Azure Functions app,
:func:`replay_functions_app` takes the app folder (as ``durable-azstorage run APP``) instead of a
function and replays through the ``Orchestrator.create`` handle, as the Functions host does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import FailureDetails, OrchestrationStatus
from .operations.history_export import RecordedHistory, read_history_file
from .operations.replay_check import DurableTaskReplayer
from .runtimes import durabletask as _dt
from .runtimes.actions import Action, CompleteOrchestration, ScheduleTask
from .runtimes.base import Registry

__all__ = ["RecordedHistory", "ReplayResult", "load_history", "replay", "replay_functions_app"]


@dataclass(frozen=True)
class ReplayResult:
    """What the orchestrator code did with the recorded history."""

    deterministic: bool
    """The code made the recorded calls in the recorded order (no ``NonDeterminismError``)."""
    status: OrchestrationStatus
    """Running (waiting for more events), or how the code ends it: Completed, Failed, ContinuedAsNew."""
    output_json: str | None = None
    failure: FailureDetails | None = None
    actions: list[Action] = field(default_factory=list)
    custom_status_json: str | None = None
    divergence: str | None = None
    """The non-determinism message, with the recorded and the new call and the source line."""

    @property
    def output(self) -> Any:
        return None if self.output_json is None else json.loads(self.output_json)

    @property
    def custom_status(self) -> Any:
        return None if self.custom_status_json is None else json.loads(self.custom_status_json)

    @property
    def scheduled_activities(self) -> list[str]:
        """Names of the activities the code schedules next."""
        return [a.name for a in self.actions if isinstance(a, ScheduleTask)]


def load_history(path: str | Path) -> RecordedHistory:
    """Read an ``export-history`` file (``MessageDecodeError`` if it is not one)."""
    return read_history_file(path)


def replay(
    orchestrator: Callable[..., Any], history: RecordedHistory | str | Path, *, name: str | None = None
) -> ReplayResult:
    """Replay ``history`` against ``orchestrator`` (a durabletask orchestrator function).

    The function is registered under the recorded orchestration name (or ``name``), so a renamed
    function still replays the recorded instance.
    """
    recorded = history if isinstance(history, RecordedHistory) else load_history(history)
    registered = str(name or recorded.name or getattr(orchestrator, "__name__", "orchestrator"))
    registry = Registry()
    registry.add_orchestrator(orchestrator, name=registered)
    verdict, ctx = DurableTaskReplayer(registry).run(recorded.instance_id or "test", registered, recorded.events)
    if verdict.exception is not None:
        ctx.set_failed(verdict.exception)  # what the worker's executor does with any exception
    actions = _dt._convert_actions(list(ctx.get_actions()))
    done = next((a for a in actions if isinstance(a, CompleteOrchestration)), None)
    divergence = None
    if verdict.verdict == "divergent":
        divergence = f"{verdict.message} (recorded {verdict.recorded}; new code {verdict.new} at {verdict.source})"
    return ReplayResult(
        deterministic=verdict.verdict != "divergent",
        status=done.status if done is not None else OrchestrationStatus.Running,
        output_json=done.result if done is not None else None,
        failure=done.failure_details if done is not None else None,
        actions=[a for a in actions if not isinstance(a, CompleteOrchestration)],
        custom_status_json=ctx._encoded_custom_status,
        divergence=divergence,
    )


def replay_functions_app(app: str | Path, history: RecordedHistory | str | Path) -> ReplayResult:
    """Replay ``history`` against the orchestrator of the same name in a Functions app folder."""
    from .functions import load_app
    from .operations.replay_check import FunctionsReplayer
    from .runtimes.base import EpisodeRequest
    from .runtimes.functions import FunctionsOrchestrationRuntime

    recorded = history if isinstance(history, RecordedHistory) else load_history(history)
    orchestrators = load_app(app).orchestrators
    verdict = FunctionsReplayer(orchestrators).check(recorded.instance_id or "test", recorded.events)
    if verdict.verdict in ("missing", "no-history"):
        raise ValueError(f"{app}: {verdict.message}")
    episode = FunctionsOrchestrationRuntime(orchestrators).run_episode_sync(EpisodeRequest(
        instance_id=recorded.instance_id or "test", execution_id=recorded.execution_id or "",
        past_events=recorded.events, new_events=[],
    ))
    actions = list(episode.actions)
    done = next((a for a in actions if isinstance(a, CompleteOrchestration)), None)
    divergent = verdict.verdict == "divergent"
    return ReplayResult(
        deterministic=not divergent,
        status=done.status if done is not None else OrchestrationStatus.Running,
        output_json=done.result if done is not None else None,
        failure=done.failure_details if done is not None else None,
        actions=[a for a in actions if not isinstance(a, CompleteOrchestration)],
        custom_status_json=episode.custom_status,
        divergence=f"{verdict.message} (recorded {verdict.recorded}; new code {verdict.new})" if divergent else None,
    )
