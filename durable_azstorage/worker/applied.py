""""A message whose effect is in the committed history is never applied again" (issue 14).

Responses (TaskCompleted, TimerFired, …) answer an id the history already knows, so a second
copy is recognised by counting. An ``EventRaised`` — an external event, an entity operation or
signal — carries no such id: if its message comes back after the episode that applied it was
committed (a crash or a failed delete between commit and delete, a lock that lapsed during an
outage), only the message itself can tell. So each checkpoint records the queue message ids of
the events it applied on the history's sentinel row (``AppliedMessageIds``, the newest
:data:`APPLIED_LIMIT`), and the next episode drops any message already on that list. A message
can only come back within its visibility timeout plus the abandon back-off, far fewer messages
than the limit for one instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..model import EventRaisedEvent
from ..storage.queues import QueueMessage

__all__ = ["APPLIED_LIMIT", "already_applied", "merged", "recordable"]

APPLIED_LIMIT = 400
"""About 16 K characters of GUIDs: well inside one table property (32 K characters)."""


def recordable(message: QueueMessage) -> bool:
    """Messages whose effect cannot be recognised from the history itself."""
    tm = message.data.task_message if message.data is not None else None
    return tm is not None and isinstance(tm.event, EventRaisedEvent)


def already_applied(messages: Iterable[QueueMessage], applied: Sequence[str]) -> list[QueueMessage]:
    known = set(applied)
    return [m for m in messages if recordable(m) and m.message_id in known]


def merged(previous: Sequence[str], new: Iterable[str]) -> list[str]:
    """The newest :data:`APPLIED_LIMIT` ids, oldest first, without repeats."""
    seen = set(previous)
    out = list(previous)
    for message_id in new:
        if message_id not in seen:
            seen.add(message_id)
            out.append(message_id)
    return out[-APPLIED_LIMIT:]
