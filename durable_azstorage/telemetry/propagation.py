"""An incoming W3C ``traceparent`` parents the spans its request causes.

Used by the HTTP start routes (management API and the client binding's loopback RPC routes) and by
the local Functions host around an HTTP-triggered function: the function's durable client
(azure-functions-durable) injects the *current* context as ``traceparent`` into its call to the
host's RPC route, so attaching the incoming request's context while the function runs carries the
caller's trace through that second hop to ``create_orchestration``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from . import tracing

__all__ = ["incoming_trace_context", "remote_trace_context"]


@contextmanager
def incoming_trace_context(headers: Mapping[str, str]) -> Iterator[None]:
    """Make the request's ``traceparent``/``tracestate`` the current context (no-op when tracing is off)."""
    with remote_trace_context(headers.get("traceparent"), headers.get("tracestate")):
        yield


@contextmanager
def remote_trace_context(traceparent: str | None, tracestate: str | None = None) -> Iterator[None]:
    """Make a caller's W3C context current (no-op when tracing is off or there is none).

    Also used by the gRPC client endpoint for ``CreateInstanceRequest.parentTraceContext``: the
    azure-functions-durable 2.x client sends the current context there (it emits no span itself).
    """
    if not traceparent or not tracing.is_enabled():
        yield
        return
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    token = context.attach(TraceContextTextMapPropagator().extract(carrier))
    try:
        yield
    finally:
        context.detach(token)
