"""Canonical Durable Task model: history events, task messages, status. No I/O, no JSON."""

from .history import *  # noqa: F403
from .history import __all__ as _history_all
from .messages import *  # noqa: F403
from .messages import __all__ as _messages_all
from .query import InstanceQuery
from .status import *  # noqa: F403
from .status import __all__ as _status_all

__all__ = [*_history_all, *_messages_all, *_status_all, "InstanceQuery"]
