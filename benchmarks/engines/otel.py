"""Telemetry on inside a benchmark child: what tracing and metrics cost a worker.

The ``durable_azstorage-otel`` variant is our engine with :func:`durable_azstorage.telemetry.configure`
given SDK providers whose exporters keep everything in memory (a ``BatchSpanProcessor`` into the
SDK's ``InMemorySpanExporter``, an ``InMemoryMetricReader``), so its CPU next to the plain engine's
is the instrumentation plus the SDK's span and metric processing — network export (OTLP) is
left out, because its cost is the collector's and the network's, not ours.
"""

from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {}


def enable_in_memory_telemetry() -> Any:
    """Turn on traces and metrics for this process; returns the span exporter (kept alive)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from durable_azstorage import telemetry

    spans = _state["spans"] = InMemorySpanExporter()
    tracer_provider = _state["tracer_provider"] = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return spans


def summary() -> dict[str, Any]:
    """What the variant recorded (proof that telemetry was on in the measured process)."""
    if "spans" not in _state:
        return {"spans": 0}
    _state["tracer_provider"].force_flush()
    names: dict[str, int] = {}
    for span in _state["spans"].get_finished_spans():
        kind = span.name.split(":", 1)[0]
        if span.kind.name == "CLIENT":  # the scheduling side of an activity or sub-orchestration
            kind += ".client"
        names[kind] = names.get(kind, 0) + 1
    return {"spans": sum(names.values()), "by_type": names}
