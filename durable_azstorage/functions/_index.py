"""What a Functions app contains, independent of how it was declared (v2 decorators or v1 folders).

Both loaders fill an :class:`AppIndex`; the host only reads this, so the programming models
differ in one module each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..runtimes.functions import ActivityFunction
from ._bindings import Binding, BindingRuntime

__all__ = ["CLIENT_BINDINGS", "SUPPORTED_BINDINGS", "TRIGGERS", "AppIndex", "HttpFunction", "TriggerFunction"]

TRIGGERS = frozenset({"timertrigger", "queuetrigger", "blobtrigger"})
"""Storage and timer triggers, run by :mod:`._triggers`."""
CLIENT_BINDINGS = frozenset({"durableclient", "orchestrationclient"})
SUPPORTED_BINDINGS = frozenset(
    {
        "httptrigger", "http", "orchestrationtrigger", "activitytrigger", "entitytrigger", "queue", "blob",
        *CLIENT_BINDINGS, *TRIGGERS,
    }
)
"""Binding types this host provides (compared lower-cased)."""


@dataclass(frozen=True)
class TriggerFunction:
    """A timer-, queue- or blob-triggered function with its other bindings (client, storage)."""

    name: str
    function: Callable[..., Any]
    trigger: Binding
    bindings: tuple[Binding, ...] = ()
    """Every binding but the trigger."""


@dataclass(frozen=True)
class HttpFunction:
    """An HTTP-triggered function: where it listens and how to call it."""

    name: str
    function: Callable[..., Any]
    route: str
    methods: tuple[str, ...] | None
    auth_level: str
    request_binding: str
    client_binding: str | None = None
    output_binding: str = "$return"
    extra_inputs: tuple[str, ...] = ()
    """Parameters filled with the client binding as well (v1 apps with several client bindings)."""


@dataclass
class AppIndex:
    """Orchestrators (``Orchestrator.create`` handles), activities, entities and HTTP functions."""

    root: Path
    model: str
    sdk_major: int = 1
    """The azure-functions-durable major version the app imports (2: durabletask-based triggers)."""
    orchestrators: dict[str, Callable[..., Any]] = field(default_factory=dict)
    """1.x: ``Orchestrator.create`` handles (context JSON in, state JSON out); 2.x: trigger handles."""
    activities: dict[str, ActivityFunction] = field(default_factory=dict)
    entities: dict[str, Any] = field(default_factory=dict)
    http: list[HttpFunction] = field(default_factory=list)
    triggers: list[TriggerFunction] = field(default_factory=list)
    binding_runtime: BindingRuntime | None = None
    """The host's :class:`._bindings.BindingRuntime` while it runs (storage bindings of activities)."""
    problems: list[str] = field(default_factory=list)
    """Functions that were not loaded, one sentence each (shown at start-up)."""
    _names: set[str] = field(default_factory=set)

    def claim(self, name: str) -> None:
        """Function names are unique, case-insensitively, across all kinds (as in Functions)."""
        key = name.lower()
        if key in self._names:
            raise ConfigurationError(f"two functions are named {name!r} (function names are case-insensitive)")
        self._names.add(key)

    @property
    def function_count(self) -> int:
        return (len(self.orchestrators) + len(self.activities) + len(self.entities) + len(self.http)
                + len(self.triggers))
