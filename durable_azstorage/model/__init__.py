"""Canonical Durable Task model: history events, task messages, status, queries. No I/O, no JSON.

``values`` (instances, failures, trace context) → ``status`` → ``history`` → ``task_message``; ``query``
and ``entities`` build on them.
"""

from .history import *  # noqa: F403
from .history import __all__ as _history_all
from .query import InstanceQuery
from .status import *  # noqa: F403
from .status import __all__ as _status_all
from .task_message import *  # noqa: F403
from .task_message import __all__ as _task_message_all
from .values import *  # noqa: F403
from .values import __all__ as _values_all

__all__ = [*_history_all, *_task_message_all, *_values_all, *_status_all, "InstanceQuery"]
