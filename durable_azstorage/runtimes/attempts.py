"""Which attempt of a retried activity a response answers (issue 14 defect 2).

The durabletask SDK retries an activity under the *same* task id: history reads
``TaskScheduled(1) … TaskFailed(1) … TimerFired … TaskScheduled(1)``. Activities are
at-least-once, so a late duplicate response of attempt 1 may arrive while attempt 2 runs, and
counting alone would take it as attempt 2's answer. The attempts differ in the episode that
scheduled them: every work item carries ``MessageData.Episode`` (the OrchestratorStarted count
of the scheduling episode) and the worker copies it onto the response, so a response whose
episode is not the latest attempt's answers an earlier one and is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import EventType, HistoryEvent

__all__ = ["answers_an_earlier_attempt", "scheduling_episodes"]

_ACTIVITY_RESPONSES = frozenset({EventType.TaskCompleted, EventType.TaskFailed})


def scheduling_episodes(task_id: int, past: Sequence[HistoryEvent]) -> list[int]:
    """The episode (1-based OrchestratorStarted count) of every TaskScheduled with ``task_id``."""
    episodes: list[int] = []
    episode = 0
    for event in past:
        if event.event_type == EventType.OrchestratorStarted:
            episode += 1
        elif event.event_type == EventType.TaskScheduled and event.event_id == task_id:
            episodes.append(episode)
    return episodes


def answers_an_earlier_attempt(event: HistoryEvent, episode: int | None, past: Sequence[HistoryEvent]) -> bool:
    """True for an activity response sent for an attempt that has since been retried.

    ``episode`` is the response message's ``MessageData.Episode``; unknown (None, 0, -1: a
    sender that does not copy it) falls back to the count-based duplicate rule.
    """
    if event.event_type not in _ACTIVITY_RESPONSES or episode is None or episode < 1:
        return False
    task_id = getattr(event, "task_scheduled_id", None)
    if task_id is None:
        return False
    episodes = scheduling_episodes(task_id, past)
    return len(episodes) > 1 and episode != episodes[-1]
