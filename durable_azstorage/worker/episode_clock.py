"""The clock of an orchestration episode, kept across attempts when it names entity requests.

An episode sends its messages before it writes history (the DTAS order), so when the history
write fails (storage trouble, a lost lease, a kill) the episode runs again and sends again. The
copies must be *identical* for the receivers to recognise them: activities, timers and
sub-orchestrations are named by event id, and entity requests carry replay-deterministic sorter
labels (runtimes/entities_orchestration.py), but the SDKs name each entity call and lock request
``new_uuid()``, a hash of the episode's ``current_utc_datetime`` — its ``OrchestratorStarted``
time. A second attempt with a new clock commits a request id the entity never answers (the
entity's sorter dropped the copy as a duplicate of the first attempt's request, which it did
answer): the caller waits forever, and a lock stays held by it.

So before an episode sends a call or a lock request it records its clock *and its inbound
messages, in order,* on the history sentinel (``EpisodeClock``, guarded by the sentinel eTag like
the checkpoint), keyed by the execution and the number of committed events; any later attempt of
the same episode — in this process or another one after a kill — runs with that clock on exactly
those messages (it waits for any that have not come back yet, and leaves newer ones to the next
episode), so it makes the same decisions and sends the same requests. The clock alone is not
enough: a re-run that got a different batch (a message still backing off, a new one arrived)
made other requests under fresh ids, and the entity applied the discarded attempt's call as
well. One extra table write, only for episodes that send entity calls or lock requests. The
execution ids an episode makes (sub-orchestrations, ContinueAsNew) are derived from the same
clock (:func:`episode_ids`), so a ContinueAsNew followed in the same work item re-runs
identically too.

Entity batches (worker/entities.py) are recorded the same way before they send anything to
another instance: a re-run on another batch had answered a caller with a result it never
committed, and a release handled before its lock request was granted again is lost.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol, TypeVar

from ..codec import entity_codec
from ..errors import MessageDecodeError
from ..model import EventRaisedEvent, TaskMessage
from ..model.entities import is_request_event
from ..storage.queues import QueueMessage

__all__ = [
    "RECORD_PATIENCE",
    "WAIT_TICK",
    "Parked",
    "RecordedEpisode",
    "clock_value",
    "episode_ids",
    "pinned_clock",
    "recorded_episode",
    "sends_entity_requests_with_answers",
    "split_recorded_inputs",
]

RECORD_PATIENCE = timedelta(minutes=15)
"""How long a re-run waits for the rest of its recorded inputs before running without them
(longer than a control message's visibility timeout: a killed holder's messages come back)."""

WAIT_TICK = 5.0
"""Parked inputs are looked at again this often (seconds) even when nothing new arrives."""


@dataclass
class Parked:
    """Messages a batch keeps held for the instance's next batch (see worker/sessions.py)."""

    messages: list[QueueMessage] = field(default_factory=list)
    wake_after: float = 0.0


_NAMESPACE = uuid.UUID("4f0e7c52-6a3e-4c1b-9d0a-2b7f1e5c8a93")


@dataclass(frozen=True)
class RecordedEpisode:
    """What the first attempt of an episode ran with: its clock and its inbound messages, in order."""

    clock: datetime
    message_ids: tuple[str, ...]


def _key(execution_id: str, committed_events: int) -> str:
    return f"{execution_id}|{committed_events}"


def clock_value(execution_id: str, committed_events: int, clock: datetime, message_ids: Sequence[str] = ()) -> str:
    """The column value: which episode (execution, committed events), its exact clock and inputs."""
    stamp = clock.astimezone(timezone.utc).isoformat()
    return f"{_key(execution_id, committed_events)}|{stamp}|{','.join(message_ids)}"


def recorded_episode(value: str | None, execution_id: str | None, committed_events: int) -> RecordedEpisode | None:
    """The record of the episode that follows ``committed_events`` events, if there is one."""
    if not value or execution_id is None:
        return None
    parts = value.split("|")
    if len(parts) != 4 or f"{parts[0]}|{parts[1]}" != _key(execution_id, committed_events):
        return None  # an earlier episode's (already committed), another execution's, or unreadable
    try:
        clock = datetime.fromisoformat(parts[2])
    except ValueError:
        return None
    return RecordedEpisode(clock, tuple(i for i in parts[3].split(",") if i))


def pinned_clock(value: str | None, execution_id: str | None, committed_events: int) -> datetime | None:
    """The clock recorded for the episode that follows ``committed_events`` events, if any."""
    record = recorded_episode(value, execution_id, committed_events)
    return record.clock if record is not None else None


def sends_entity_requests_with_answers(outbound: Sequence[TaskMessage]) -> bool:
    """True when the episode sends an entity call or lock request (whose id the answer carries).

    Signals need no pin: they get no answer, and their copies are recognised by sorter label.
    """
    for message in outbound:
        event = message.event
        if not isinstance(event, EventRaisedEvent) or not is_request_event(event.name or ""):
            continue
        try:
            request = entity_codec.decode_request(event.input or "")
        except MessageDecodeError:
            continue
        if not request.is_signal:
            return True
    return False


def episode_ids(instance_id: str, clock: datetime) -> Callable[[], str]:
    """Execution ids for one episode (work item), the same in every attempt that runs with ``clock``.

    32 hex digits like ``uuid4().hex``; one counter for the whole work item, so the generations
    of a ContinueAsNew chain followed in it get distinct ids.
    """
    stamp = clock.astimezone(timezone.utc).isoformat()
    counter = itertools.count()
    return lambda: uuid.uuid5(_NAMESPACE, f"{instance_id}|{stamp}|{next(counter)}").hex


class _Identified(Protocol):
    @property
    def message_id(self) -> str: ...


M = TypeVar("M", bound=_Identified)


def split_recorded_inputs(messages: Sequence[M], record: RecordedEpisode) -> tuple[list[M], list[M]] | None:
    """(the recorded inputs in their order, the newer messages) — None while some are still away."""
    available = {m.message_id: m for m in messages}
    if not all(i in available for i in record.message_ids):
        return None
    wanted = set(record.message_ids)
    return [available[i] for i in record.message_ids], [m for m in messages if m.message_id not in wanted]
