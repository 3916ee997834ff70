"""Index the storage side of a function, the same way for v1 (function.json) and v2 (decorators).

Timer-, queue- and blob-triggered functions become :class:`TriggerFunction` entries; activities
and HTTP functions with ``blob``/``queue`` bindings are wrapped so those bindings are filled
around each call; orchestrators and entities cannot have them (as on Azure: I/O belongs in
activities).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._bindings import STORAGE_BINDINGS, Binding, parse_bindings, with_bindings
from ._index import TRIGGERS, AppIndex, TriggerFunction
from ._timer_schedule import parse_schedule

__all__ = ["index_storage"]


def index_storage(
    index: AppIndex,
    name: str,
    function: Callable[..., Any],
    raw_bindings: Sequence[Mapping[str, Any]],
) -> Callable[..., Any] | None:
    """``None`` when the function was indexed as a trigger function; else the function to register.

    Raises ``ValueError`` with one sentence when the bindings cannot work (the loader reports it).
    """
    bindings = parse_bindings(raw_bindings)
    trigger = next((b for b in bindings if b.type.endswith("trigger")), None)
    if trigger is None:
        raise ValueError("it has no trigger binding")
    others = tuple(b for b in bindings if b is not trigger)
    if trigger.type in TRIGGERS:
        _check_trigger(trigger)
        index.triggers.append(TriggerFunction(name, function, trigger, others))
        return None
    storage = [b for b in others if b.type in STORAGE_BINDINGS]
    if not storage:
        return function
    if trigger.type in ("orchestrationtrigger", "entitytrigger"):
        listed = ", ".join(f"{b.name!r} ({b.type})" for b in storage)
        raise ValueError(f"binding {listed} cannot be used by an {trigger.type} (use an activity for I/O)")
    return with_bindings(lambda: index.binding_runtime, function, trigger.name, storage)


def _check_trigger(trigger: Binding) -> None:
    if trigger.type == "timertrigger":
        schedule = trigger.get("schedule")
        if not schedule:
            raise ValueError("its timerTrigger has no \"schedule\"")
        if "%" not in str(schedule):
            parse_schedule(str(schedule))  # ConfigurationError is a ValueError-like one-liner
    elif trigger.type == "queuetrigger" and not trigger.get("queueName"):
        raise ValueError("its queueTrigger has no \"queueName\"")
    elif trigger.type == "blobtrigger" and "/" not in str(trigger.get("path") or ""):
        raise ValueError("its blobTrigger \"path\" must be 'container/pattern'")
