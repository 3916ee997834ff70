"""OpenTelemetry for durable_azstorage: traces as Durable Functions / durabletask name them.

Off by default with zero overhead; on with ``OTEL_*`` environment variables, ``--otel`` on the CLI,
or :func:`configure` with your own tracer provider. See docs/observability.md.
"""

from . import metrics
from .setup import configure, wanted
from .tracing import TRACER_NAME, disable, enable, is_enabled

__all__ = ["TRACER_NAME", "metrics", "configure", "disable", "enable", "is_enabled", "wanted"]
