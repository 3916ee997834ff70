"""Orchestrator → entity messages in the DTFx/Durable Functions encoding, SDK-neutral.

Both SDK adapters turn "call / signal / lock / unlock an entity" into a canonical
:class:`~.actions.SendEvent` here, so history and queues hold exactly what a .NET
orchestration would write: ``EventSent`` named ``op`` (``op@<due>`` when scheduled,
``release`` to unlock) whose input is the Core ``RequestMessage`` JSON; the entity answers
with an ``EventRaised`` named after the request id.

Message-sorter labels (``Timestamp``/``Predecessor``) are made *replay-deterministic*: Core
labels with the episode clock, which changes when an episode that crashed before its history
commit runs again, so a signal re-sent by that re-run would look new to the entity and be
applied twice. Here the clock is the newest committed event's time (the ExecutionStarted time
in a first episode), bumped by one tick per message as Core does; a re-run re-sends identical
labels and the entity's sorter drops the copy. See docs/entities.md for the trade-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ..codec import entity_codec
from ..errors import MessageDecodeError
from ..model import EventSentEvent, ExecutionStartedEvent, HistoryEvent
from ..model.entities import (
    RELEASE_EVENT_NAME,
    REQUEST_EVENT_NAME,
    EntityId,
    MessageSorter,
    ReleaseMessage,
    RequestMessage,
    is_request_event,
    scheduled_request_event_name,
    ticks_from_datetime,
)
from .actions import SendEvent

__all__ = ["EntityMessageEncoder"]

MAX_SIGNAL_DELAY = timedelta(days=6)
_WINDOW_TICKS = 30 * 60 * 10_000_000  # the sorter's default reorder window (30 minutes)


class EntityMessageEncoder:
    """Builds the SendEvent for each entity action of one orchestration episode."""

    def __init__(
        self,
        instance_id: str,
        execution_id: str,
        past_events: Sequence[HistoryEvent],
        new_events: Sequence[HistoryEvent] = (),
    ) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self._sorter = MessageSorter(last_sent_to_instance={})
        for event in past_events:
            if isinstance(event, EventSentEvent) and is_request_event(event.name) and event.instance_id:
                self._remember(event)
        clock_source = list(past_events) or [e for e in new_events if isinstance(e, ExecutionStartedEvent)]
        self._clock = max((e.timestamp for e in clock_source), default=None)

    def _remember(self, event: EventSentEvent) -> None:
        try:
            request = entity_codec.decode_request(event.input or "")
        except MessageDecodeError:
            return
        assert self._sorter.last_sent_to_instance is not None and event.instance_id is not None
        previous = self._sorter.last_sent_to_instance.get(event.instance_id, 0)
        self._sorter.last_sent_to_instance[event.instance_id] = max(previous, request.timestamp)

    def _now(self, fallback: datetime) -> datetime:
        return self._clock if self._clock is not None else fallback

    def _request_event(self, action_id: int, target: str, request: RequestMessage, now: datetime) -> SendEvent:
        if request.scheduled_time is not None:
            due = min(request.scheduled_time, self._now(now) + MAX_SIGNAL_DELAY)
            name = scheduled_request_event_name(ticks_from_datetime(due))
        else:
            self._sorter.label_outgoing(request, target, ticks_from_datetime(self._now(now)), _WINDOW_TICKS)
            name = REQUEST_EVENT_NAME
        return SendEvent(id=action_id, instance_id=target, name=name, data=entity_codec.encode_request(request))

    def operation(
        self,
        action_id: int,
        *,
        target: str,
        operation: str,
        input: str | None,
        request_id: str,
        signal: bool,
        scheduled_time: datetime | None,
        now: datetime,
    ) -> SendEvent:
        """``call_entity`` (``signal=False``) or ``signal_entity`` (one-way)."""
        request = RequestMessage(
            id=request_id,
            operation=operation,
            is_signal=signal,
            input=input,
            parent_instance_id=self.instance_id,
            parent_execution_id=self.execution_id,
            scheduled_time=scheduled_time,
        )
        return self._request_event(action_id, target, request, now)

    def lock(self, action_id: int, *, request_id: str, lock_set: Sequence[str], now: datetime) -> SendEvent:
        """Critical-section request: goes to the first entity of the (already sorted) set."""
        entities = tuple(EntityId.parse(e) for e in lock_set)
        request = RequestMessage(
            id=request_id,
            parent_instance_id=self.instance_id,
            parent_execution_id=self.execution_id,
            lock_set=entities,
            position=0,
        )
        return self._request_event(action_id, str(entities[0]), request, now)

    def unlock(self, action_id: int, *, request_id: str, target: str) -> SendEvent:
        message = ReleaseMessage(parent_instance_id=self.instance_id, id=request_id)
        return SendEvent(
            id=action_id, instance_id=target, name=RELEASE_EVENT_NAME, data=entity_codec.encode_release(message)
        )
